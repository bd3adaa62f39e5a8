"""`promise-ledger replay`: run the engine offline over JSON-lines or Avro container files."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, BinaryIO

import click
import fastavro
import orjson

from streams.cli.errors import EXIT_OK, EXIT_REJECTED_INPUT, EXIT_USAGE, CommandError
from streams.contract import (
    InputEvent,
    InvalidEvent,
    ValueLimits,
    iso_to_ms,
    load_json_line,
    parse_loose_event,
)
from streams.engine import (
    AlignmentEvent,
    ConfigError,
    ConflictingDuplicate,
    EngineConfig,
    PromiseEngine,
    load_config,
)
from streams.settings import Settings
from streams.topology import PartitionedEngines

AVRO_MAGIC = b"Obj\x01"
#: below this much input a progress bar is more flicker than help
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_WRITE_BATCH = 4096

#: (line number, the event or why it was rejected)
Entry = tuple[int, InputEvent | str]


def _json_entries(handle: BinaryIO, progress: _Progress, limits: ValueLimits) -> Iterator[Entry]:
    tracking = progress.active
    for number, line in enumerate(handle, start=1):
        if tracking:
            progress.advance(len(line))
        try:
            yield number, parse_loose_event(load_json_line(line), limits)
        except InvalidEvent as error:
            if line.strip():  # a blank line is no JSON either, but is skipped, not rejected
                yield number, str(error)


def _record_type_name(schema: Any) -> str | None:
    if isinstance(schema, dict) and schema.get("type") == "record":
        return str(schema.get("name", "")).rsplit(".", 1)[-1] or None
    return None


def _avro_entries(handle: BinaryIO, progress: _Progress, limits: ValueLimits) -> Iterator[Entry]:
    try:
        reader = fastavro.reader(handle, return_record_name=True)
    except (ValueError, EOFError, fastavro.read.SchemaResolutionError) as error:
        yield 0, f"not a readable Avro container: {error}"
        return
    default_type = _record_type_name(reader.writer_schema)
    number = 0
    position = handle.tell()
    records = iter(reader)
    while True:
        number += 1
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as error:  # fastavro raises many types for a corrupt block
            yield number, f"corrupt Avro data: {error}"
            return
        now = handle.tell()
        progress.advance(now - position)
        position = now
        if isinstance(record, tuple):
            name, record = record
            type_name: str | None = str(name).rsplit(".", 1)[-1]
        else:
            type_name = default_type
        if not isinstance(record, dict):
            yield number, f"expected a record, got {type(record).__name__}"
            continue
        if "type" not in record and type_name is not None:
            record = {"type": type_name, **record}
        try:
            yield number, parse_loose_event(record, limits)
        except InvalidEvent as error:
            yield number, str(error)


class _Progress:
    """A rich progress bar over input bytes on stderr, only for big inputs on a terminal."""

    def __init__(self, total_bytes: int) -> None:
        self._bar: Any = None
        self._pending = 0
        if total_bytes >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                "replay",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task("replay", total=total_bytes)
            self._bar.start()

    @property
    def active(self) -> bool:
        return self._bar is not None

    def advance(self, size: int) -> None:
        if self._bar is None:
            return
        self._pending += size
        if self._pending >= 1 << 20:
            self._bar.advance(self._task, self._pending)
            self._pending = 0

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _parse_until(text: str) -> int:
    moment = f"{text}T00:00:00Z" if len(text) == 10 else text
    try:
        return iso_to_ms(moment)
    except InvalidEvent as error:
        raise CommandError(f"bad --until: {error}", EXIT_USAGE) from None


def _load_config(path: str | None) -> EngineConfig:
    if path is None:
        return EngineConfig()
    try:
        return load_config(path)
    except ConfigError as error:
        raise CommandError(str(error), EXIT_USAGE) from None


class _Output:
    """Alignment events as JSON lines, batched into few writes."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lines: list[bytes] = []

    def write(self, events: list[AlignmentEvent]) -> None:
        lines = self._lines
        # orjson writes a dataclass from its instance dict: the to_dict() keys, in the same order.
        lines.extend(map(orjson.dumps, events))
        if len(lines) >= _WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._lines.append(b"")
            self._stream.write(b"\n".join(self._lines))
            self._lines.clear()
        self._stream.flush()


def collect_garbage_rarely() -> None:
    """A replay makes millions of short-lived objects and, on valid input, no reference cycles, yet
    the cyclic collector kept walking the engine's growing state: about 5% of a 200k-event run. Freeze
    what startup made out of its reach and let it run far less often (0.30 s -> 0.07 s there)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def replay_files(
    paths: list[str],
    engine: PromiseEngine | PartitionedEngines,
    output: BinaryIO,
    strict: bool = False,
    until: int | None = None,
) -> int:
    """Replay the files in order into ``engine``; returns how many lines were rejected."""
    rejected = 0
    sink = _Output(output)
    with ExitStack() as stack:
        handles = [stack.enter_context(open(path, "rb")) for path in paths]
        progress = _Progress(sum(os.fstat(handle.fileno()).st_size for handle in handles))
        stack.callback(progress.close)
        stopped = False
        for path, handle in zip(paths, handles, strict=True):
            if stopped:
                break
            is_avro = handle.read(4) == AVRO_MAGIC
            handle.seek(0)
            read = _avro_entries if is_avro else _json_entries
            entries = read(handle, progress, engine.config.limits)
            process = engine.process
            for number, entry in entries:
                if type(entry) is not str:
                    try:
                        out = process(entry)  # type: ignore[arg-type]
                    except ConflictingDuplicate as conflict:
                        entry = f"conflicting_duplicate: {conflict}"
                    else:
                        if out:
                            sink.write(out)
                        continue
                rejected += 1
                sink.flush()
                click.echo(f"{path}:{number}: {entry}", err=True)
                if strict:
                    stopped = True
                    break
        if until is not None and not stopped:
            sink.write(engine.advance_to(until))
        sink.write(engine.drain())  # the input has ended: nothing is held back for later arrivals
        sink.flush()
    return rejected


@click.command("replay")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--until", metavar="TIME", help="At the end, fire every deadline before TIME (ISO-8601 UTC).")
@click.option("--config", "config_path", metavar="FILE", help="Engine settings (TOML); see docs/engine.md.")
@click.option("--strict", is_flag=True, help="Stop at the first rejected line instead of skipping it.")
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=lambda: Settings.from_env().partitions,
    show_default="$PL_PARTITIONS, else 6",
    help="Run one engine per partition, customers placed as Kafka places their keys: as the worker does.",
)
def command(
    files: tuple[str, ...], until: str | None, config_path: str | None, strict: bool, partitions: int
) -> int:
    """Run the promise engine over input-event FILEs (JSON lines or Avro containers), in order.

    Alignment events go to stdout as JSON lines, what the live pipeline publishes for the same log
    (per customer, the same events in the same order with the same ids). A rejected line is reported on
    stderr as FILE:LINE: reason and skipped; the exit code is then 3 (with --strict, at the first one).
    """
    until_ms = _parse_until(until) if until is not None else None
    config = _load_config(config_path)
    for path in files:
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise CommandError(f"cannot read {path}", EXIT_USAGE)
    engine = PartitionedEngines(config, partitions) if partitions > 1 else PromiseEngine(config)
    collect_garbage_rarely()
    rejected = replay_files(list(files), engine, sys.stdout.buffer, strict=strict, until=until_ms)
    if rejected:
        stopped = " (stopped at the first, --strict)" if strict else ""
        click.echo(f"promise-ledger replay: {rejected} line(s) rejected{stopped}", err=True)
        return EXIT_REJECTED_INPUT
    return EXIT_OK
