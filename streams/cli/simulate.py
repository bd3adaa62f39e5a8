"""`promise-ledger simulate`: a synthetic company's events, to a JSON-lines file or to Kafka."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

import click

from streams.cli.errors import EXIT_USAGE, CommandError
from streams.contract import InvalidEvent, decoded_to_json_line, iso_to_ms
from streams.simulate import DEFAULT_START_MS, simulate_events

_WRITE_BATCH = 4096
_DAY_MS = 86_400_000


def _parse_start(text: str | None, days: int, to_kafka: bool) -> int:
    if text is None:
        if to_kafka:  # a live pipeline judges events against wall time: the company's story ends today
            return (int(time.time() * 1000) // _DAY_MS - days) * _DAY_MS
        return DEFAULT_START_MS
    moment = f"{text}T00:00:00Z" if len(text) == 10 else text
    try:
        return iso_to_ms(moment)
    except InvalidEvent as error:
        raise CommandError(f"bad --start: {error}", EXIT_USAGE) from None


def _write_file(path: str, events: Iterable[dict[str, Any]]) -> None:
    try:
        handle = open(path, "wb")  # noqa: SIM115 - closed below, after the error check
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}", EXIT_USAGE) from None
    with handle:
        lines: list[bytes] = []
        for decoded in events:
            lines.append(decoded_to_json_line(decoded))
            if len(lines) >= _WRITE_BATCH:
                lines.append(b"")
                handle.write(b"\n".join(lines))
                lines.clear()
        if lines:
            lines.append(b"")
            handle.write(b"\n".join(lines))


def _publish(events: list[dict[str, Any]], rate: float | None) -> None:
    from kafka.errors import KafkaError
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from streams.publish import EventPublisher
    from streams.settings import Settings

    settings = Settings.from_env()
    try:
        publisher = EventPublisher(settings.kafka_bootstrap)
    except KafkaError as error:
        raise CommandError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({type(error).__name__})"
        ) from None
    console = Console(stderr=True)
    published = 0
    started = time.monotonic()
    columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("publishing", total=len(events))
            for event in events:
                if rate:
                    ahead = published / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                publisher.publish(event)
                published += 1
                if published % 500 == 0:
                    progress.update(task, completed=published)
            progress.update(task, completed=published)
    except KeyboardInterrupt:
        console.print("interrupted: flushing what was sent")
    finally:
        publisher.flush()
        publisher.close()
        elapsed = time.monotonic() - started
        console.print(f"published {published:,} of {len(events):,} events in {elapsed:.1f}s")


@click.command("simulate")
@click.option("--to-file", "to_file", metavar="FILE", help="Write the events as JSON lines to FILE.")
@click.option(
    "--to-kafka", is_flag=True, help="Publish them to the department topics (Avro, keyed by customer)."
)
@click.option("--customers", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--start",
    metavar="TIME",
    help="First day, ISO-8601 UTC  [default: 2026-03-02 for files; DAYS ago for --to-kafka]",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --to-kafka: at most this many events a second  [default: as fast as Kafka takes them]",
)
def command(
    to_file: str | None,
    to_kafka: bool,
    customers: int,
    days: int,
    seed: int,
    start: str | None,
    rate: float | None,
) -> None:
    """Generate a realistic synthetic company's events: the same seed gives the same events.

    \b
    Campaigns with claims and exposures, reps with commitments, approvals and amendments, orders with
    full, partial, late and missing deliveries, stockouts, tickets of every category, replies with and
    without discouraged phrases, service promises, resolutions and ratings.

    \b
      promise-ledger simulate --to-file company.jsonl --customers 500 --days 60
      promise-ledger simulate --to-kafka --customers 200 --rate 500     (PL_KAFKA_BOOTSTRAP)
    """
    if (to_file is None) == (not to_kafka):
        raise CommandError("say where the events go: --to-file FILE or --to-kafka (one of them)", EXIT_USAGE)
    start_ms = _parse_start(start, days, to_kafka)
    events = simulate_events(customers=customers, days=days, seed=seed, start_ms=start_ms)
    if to_file is not None:
        _write_file(to_file, events)
    else:
        _publish(list(events), rate)
