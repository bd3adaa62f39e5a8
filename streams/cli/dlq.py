"""`promise-ledger dlq`: dead letters counted by reason and topic, one shown in full, a selection
redriven to its source topic once the cause is fixed (SPEC §6)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import click

from streams.cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError
from streams.contract import iso_to_ms
from streams.contract.timestamps import InvalidEvent
from streams.dlq import (
    CountRow,
    DeadLetter,
    DeadLetterLog,
    Marker,
    RedriveTarget,
    Selection,
    count,
    describe,
    marker_of,
    plan,
    read_all,
    readable,
    redrive,
    safe_json,
)
from streams.dlq.clickhouse import TABLE as SINK_TABLE
from streams.dlq.letters import printable
from streams.settings import DEAD_LETTER_TOPIC, Settings

#: from this many records on, a redrive on a terminal shows a progress bar
PROGRESS_MIN = 1000


class DlqAccess(Protocol):
    def log(self) -> DeadLetterLog: ...
    def markers(self) -> dict[str, Marker]: ...
    def target(self) -> RedriveTarget: ...
    def close(self) -> None: ...


def open_kafka(settings: Settings) -> DlqAccess:
    from streams.dlq.kafka import KafkaDlq

    return KafkaDlq(settings.kafka_bootstrap)


#: how the commands reach the topics; tests put fakes here
open_dlq: Callable[[Settings], DlqAccess] = open_kafka


def read_sink_table(settings: Settings, selection: Selection) -> list[DeadLetter]:
    from streams.cli.service import clickhouse_client
    from streams.dlq.clickhouse import read_sink_letters

    client = clickhouse_client(settings)
    try:
        return read_sink_letters(client, selection.since_ms, selection.until_ms)
    finally:
        client.disconnect()


#: how the commands reach the sink's sink_dead_letters table; tests put fakes here
read_sink: Callable[[Settings, Selection], list[DeadLetter]] = read_sink_table


def _sink_letters(selection: Selection) -> tuple[list[DeadLetter], str | None]:
    """The sink's dead letters, or none and the one line saying why they could not be read: the
    topic's are worth having when ClickHouse is away (it may be why rows were refused)."""
    from streams.dlq.clickhouse import SinkUnavailable

    settings = Settings.from_env()
    try:
        return read_sink(settings, selection), None
    except SinkUnavailable as error:
        ch = settings.clickhouse
        return [], (
            f"the sink's dead letters (ClickHouse {SINK_TABLE} at {ch.host}:{ch.port}) could not be read: "
            f"{error}; only {DEAD_LETTER_TOPIC}'s are included"
        )


@contextmanager
def _dlq() -> Iterator[DlqAccess]:
    from kafka.errors import KafkaError

    from streams.dlq.kafka import KafkaUnavailable

    settings = Settings.from_env()
    try:
        access = open_dlq(settings)
    except KafkaUnavailable as error:
        raise CommandError(str(error)) from None
    try:
        yield access
    except KafkaUnavailable as error:
        raise CommandError(f"{error} on {settings.kafka_bootstrap}") from None
    except KafkaError as error:
        raise CommandError(f"Kafka at {settings.kafka_bootstrap} failed: {type(error).__name__}") from None
    finally:
        access.close()


def _moment(option: str, text: str | None) -> int | None:
    """ISO-8601 with a zone, or a day (YYYY-MM-DD, midnight UTC)."""
    if text is None:
        return None
    try:
        return iso_to_ms(f"{text}T00:00:00Z" if len(text) == 10 else text)
    except InvalidEvent as error:
        raise CommandError(f"bad {option}: {error}", EXIT_USAGE) from None


def _selection(
    reasons: Sequence[str], topics: Sequence[str], since: str | None = None, until: str | None = None
) -> Selection:
    return Selection(
        frozenset(reasons), frozenset(topics), _moment("--since", since), _moment("--until", until)
    )


def _nothing_matches(letters: Sequence[DeadLetter]) -> str:
    if not letters:
        return f"no dead letters in {DEAD_LETTER_TOPIC} or {SINK_TABLE}"
    reasons = ", ".join(sorted({printable(letter.reason) for letter in letters}))
    topics = ", ".join(sorted({printable(letter.topic) for letter in letters if letter.topic})) or "none"
    return f"no dead letter matches (reasons present: {reasons}; source topics: {topics})"


def _counts_table(rows: list[CountRow]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Dead letters in {DEAD_LETTER_TOPIC} and {SINK_TABLE}", title_justify="left")
    for heading in ("set aside by", "reason", "source topic", "dead letters", "redriven", "first", "last"):
        table.add_column(heading, justify="right" if heading in ("dead letters", "redriven") else "left")
    for row in rows:
        shown = row.to_dict()
        table.add_row(
            row.origin,
            escape(printable(row.reason)),
            escape(printable(row.topic)) or "-",
            str(row.dead_letters),
            str(row.redriven),
            shown["first_dead_lettered_at"],
            shown["last_dead_lettered_at"],
        )
    total = sum(row.dead_letters for row in rows)
    redriven = sum(row.redriven for row in rows)
    table.caption = f"{total} dead letters, {redriven} of them redriven" if rows else "no dead letters"
    return table


@click.group("dlq")
def command() -> None:
    """Dead letters: records a stage set aside, with the reason and the original bytes: the worker's
    and the notifier's in alignment.dlq, the sink's in ClickHouse (sink_dead_letters).

    \b
      promise-ledger dlq counts                          by reason and source topic
      promise-ledger dlq show --reason invalid_event     the oldest of them, in full
      promise-ledger dlq redrive --reason invalid_event  back to their source topic, after a fix

    Reads the topic from its beginning to its end without a consumer group, and the sink's table.
    Reads PL_KAFKA_BOOTSTRAP and the PL_CLICKHOUSE_* settings. When ClickHouse cannot be read, each
    subcommand says so in one line on stderr and works on alignment.dlq's dead letters alone; counts
    and redrive then exit 1.
    """


def _reason_and_topic_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--topic",
        "topics",
        multiple=True,
        metavar="T",
        help="Only dead letters from this source topic (repeatable).",
    )(function)
    return click.option(
        "--reason",
        "reasons",
        multiple=True,
        metavar="R",
        help="Only dead letters with this reason (repeatable).",
    )(function)


@command.command("counts")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per reason and source topic.")
def counts_command(as_json: bool) -> int:
    """Dead letters by the stage that set them aside (worker, notifier, sink), reason and source
    topic, and how many of them were redriven. Exit 1 when the sink's could not be read."""
    with _dlq() as access:
        sink, unread = _sink_letters(Selection())
        rows = count([*read_all(access.log()), *sink], access.markers())
    if as_json:
        for row in rows:
            click.echo(safe_json(row.to_dict()))
    else:
        from rich.console import Console

        Console().print(_counts_table(rows))
    if unread:
        click.echo(unread, err=True)
        return EXIT_FAILURE
    return EXIT_OK


def _position(ctx: click.Context, param: click.Parameter, text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise click.BadParameter(f"expected PARTITION:OFFSET of {DEAD_LETTER_TOPIC}, got {text!r}")
    return int(partition), int(offset)


@command.command("show")
@_reason_and_topic_options
@click.option(
    "--index",
    type=int,
    default=None,
    metavar="N",
    help="The Nth matching dead letter, oldest first, from 0; negative counts from the newest.  [default: 0]",
)
@click.option(
    "--offset",
    "position",
    callback=_position,
    metavar="P:O",
    help=f"The dead letter at partition P, offset O of {DEAD_LETTER_TOPIC}.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object; bytes also in base64.")
def show_command(
    reasons: tuple[str, ...],
    topics: tuple[str, ...],
    index: int | None,
    position: tuple[int, int] | None,
    as_json: bool,
) -> int:
    """One dead letter in full: reason, detail, source topic, partition and offset, when, the original
    key, and the original value decoded where possible (escaped otherwise)."""
    if index is not None and position is not None:
        raise click.UsageError("--index and --offset pick a dead letter each: give one of them")
    selection = _selection(reasons, topics)
    with _dlq() as access:
        sink, unread = _sink_letters(selection)
        letters = [*read_all(access.log()), *sink]
        markers = access.markers() if letters else {}
    if unread:
        click.echo(unread, err=True)
    matching = selection.of(letters)
    if position is not None:
        found = [d for d in matching if (d.dlq_partition, d.dlq_offset) == position]
        if not found:
            where = f"{DEAD_LETTER_TOPIC}:{position[0]}:{position[1]}"
            raise CommandError(f"no dead letter at {where}" + (" matches" if reasons or topics else ""))
        letter = found[0]
    else:
        if not matching:
            raise CommandError(_nothing_matches(letters))
        wanted = 0 if index is None else index
        if not -len(matching) <= wanted < len(matching):
            raise CommandError(f"--index {wanted} is out of range: {len(matching)} dead letters match")
        letter = matching[wanted]
    description = describe(letter, marker_of(letter, markers))
    click.echo(safe_json(description) if as_json else readable(description))
    return EXIT_OK


class _Progress:
    """A rich progress bar on stderr, only for a large redrive on a terminal."""

    def __init__(self, total: int) -> None:
        self._bar: Any = None
        if total >= PROGRESS_MIN and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                "redrive",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task("redrive", total=total)
            self._bar.start()

    def advance(self, sent: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, sent)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _by_topic(letters: Sequence[DeadLetter]) -> str:
    return ", ".join(
        f"{printable(topic)}: {n}" for topic, n in sorted(Counter(d.topic for d in letters).items())
    )


@command.command("redrive")
@_reason_and_topic_options
@click.option(
    "--since", metavar="TIME", help="Only dead letters set aside at or after TIME (ISO-8601, or a day)."
)
@click.option("--until", metavar="TIME", help="Only dead letters set aside before TIME.")
@click.option("--again", is_flag=True, help="Also those already redriven (by default they are skipped).")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
def redrive_command(
    reasons: tuple[str, ...],
    topics: tuple[str, ...],
    since: str | None,
    until: str | None,
    again: bool,
    dry_run: bool,
    yes: bool,
) -> int:
    """Send the selected dead letters' original key and value back to their source topic and
    partition, once what refused them is fixed (a limit raised, a schema registered, Slack's answer
    dealt with). Each redriven record carries a `pl-redriven-from` header, and what was sent is
    remembered in the compacted topic alignment.dlq-redriven: running the same redrive again skips it
    (--again sends it anyway; the worker ignores an event_id it applied within its dedupe window).

    The sink's dead letters go back to the output topic they were read from (alignment.events,
    alignment.alerts), on the same partition, for the sink to take again; they have no key to send.

    Exit status 1 when some selected dead letters cannot go back (an unreadable record, a source
    topic or partition that no longer exists, a sink row copying a dead letter of alignment.dlq) or
    the sink's could not be read; the others are sent.
    """
    selection = _selection(reasons, topics, since, until)
    with _dlq() as access:
        sink, unread = _sink_letters(selection)
        letters = [*read_all(access.log()), *sink]
        if unread:
            click.echo(unread, err=True)
        selected = selection.of(letters)
        if not selected:
            click.echo(_nothing_matches(letters) + ": nothing to redrive", err=True)
            return EXIT_FAILURE if unread else EXIT_OK
        target = access.target()
        todo = plan(selected, access.markers(), target.partitions_for, again=again)
        if todo.already_redriven:
            click.echo(
                f"skipping {len(todo.already_redriven)} already redriven (--again sends them too)", err=True
            )
        for letter, why in todo.refused[:10]:
            click.echo(
                f"cannot redrive {letter.where} ({printable(letter.reason)}): {printable(why)}", err=True
            )
        if len(todo.refused) > 10:
            click.echo(f"... and {len(todo.refused) - 10} more that cannot be redriven", err=True)
        status = EXIT_FAILURE if todo.refused or unread else EXIT_OK
        if not todo.to_send:
            click.echo("nothing to redrive", err=True)
            return status
        summary = f"{len(todo.to_send)} dead letters ({_by_topic(todo.to_send)})"
        if dry_run:
            click.echo(f"dry run: would redrive {summary}")
            return status
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError(f"redriving {summary} needs --yes when not run on a terminal", EXIT_USAGE)
            if not click.confirm(f"redrive {summary}?", default=False):
                click.echo("nothing redriven", err=True)
                return EXIT_FAILURE
        progress = _Progress(len(todo.to_send))
        done = [0]

        def advance(sent: int) -> None:
            done[0] += sent
            progress.advance(sent)

        try:
            sent = redrive(todo.to_send, target, lambda: int(time.time() * 1000), advance)
        except Exception:
            # What was confirmed is marked: the same command again sends only the rest.
            click.echo(
                f"stopped after {done[0]} of {len(todo.to_send)} redriven; run it again for the rest",
                err=True,
            )
            raise
        finally:
            progress.close()
    click.echo(f"redriven {sent} dead letters ({_by_topic(todo.to_send)})")
    return status
