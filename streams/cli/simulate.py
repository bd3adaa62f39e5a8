"""`promise-ledger simulate`: a synthetic company's events, to a JSON-lines file or to Kafka."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from streams.cli.errors import EXIT_USAGE, CommandError
from streams.contract import InvalidEvent, decoded_to_json_line, iso_to_ms
from streams.simulate import (
    DEFAULT_START_MS,
    publication_schedule,
    simulate_events,
    story_shift_to_end_now,
)

if TYPE_CHECKING:  # imported where used: `simulate --to-file` needs neither Kafka nor rich
    from rich.console import Console

    from streams.publish import EventPublisher

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


#: The last event of a story published at once is this far in the past: a worker dead-letters events
#: ahead of its clock (SPEC §5), so a story that ends in the future would not be the ledger it tells.
_ENDS_BEFORE_NOW_MS = 60_000


def _ending_before_now(customers: int, days: int, seed: int, start_ms: int) -> int:
    """The start that moves the story back so that its last event occurred a minute ago (the last
    days' deliveries and replies fall after the last day the company makes promises)."""
    last_ms = max(
        int(event["occurred_at"])
        for event in simulate_events(customers=customers, days=days, seed=seed, start_ms=start_ms)
    )
    overshoot_ms = last_ms - (int(time.time() * 1000) - _ENDS_BEFORE_NOW_MS)
    return start_ms - max(overshoot_ms, 0)


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


def _publish(schedule: list[tuple[float, dict[str, Any]]], rate: float | None) -> None:
    """Publish at each event's due second (0 for all: as fast as Kafka takes them), at most ``rate``/s."""
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
            task = progress.add_task("publishing", total=len(schedule))
            for due_s, event in schedule:
                if rate:
                    due_s = max(due_s, published / rate)
                ahead = due_s - (time.monotonic() - started)
                if ahead > 0:
                    progress.update(task, completed=published)
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
        elapsed = time.monotonic() - started
        console.print(f"published {published:,} of {len(schedule):,} events in {elapsed:.1f}s")
        _close_in_order(publisher, console)


def _close_in_order(publisher: EventPublisher, console: Console) -> None:
    """Close once the clock has passed the last timestamp, so that what is published next is ordered
    after these events (a burst runs about a millisecond ahead per event)."""
    ahead_s = publisher.ahead_of_clock_s
    if ahead_s > 1:
        console.print(
            f"waiting {ahead_s:.1f}s for the clock to pass the last record timestamp, "
            "so that events published next are ordered after these (Ctrl-C skips)"
        )
    try:
        publisher.close()
    except KeyboardInterrupt:
        console.print("not waited: events published in the next moments may be ordered before these")


def _live_schedule(
    customers: int, days: int, seed: int, start_ms: int, speed: float, jitter_s: float
) -> list[tuple[float, dict[str, Any]]]:
    """The company moved in time so that, published ``speed`` times faster than it lived, its story
    ends as publishing does: every event is published after it occurred, the last ones just in time."""
    jitter_ms = round(jitter_s * 1000)

    def schedule(start: int) -> list[tuple[float, dict[str, Any]]]:
        events = list(simulate_events(customers=customers, days=days, seed=seed, start_ms=start))
        return publication_schedule(events, speed, jitter_ms, seed)

    shift = story_shift_to_end_now(schedule(start_ms), speed, int(time.time() * 1000))
    return schedule(start_ms + shift)


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
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    default=None,
    help="With --to-kafka: live the story this many times faster than wall time (86400: a day a second), "
    "moved so that it ends as publishing does  [default: publish at once]",
)
@click.option(
    "--jitter",
    "jitter_s",
    type=click.FloatRange(min=0, max=300, max_open=True),
    default=60.0,
    show_default=True,
    help="With --speed: publish each customer event up to this many story seconds late, as real "
    "producers do (keep it inside the worker's grace, 5 minutes by default)",
)
def command(
    to_file: str | None,
    to_kafka: bool,
    customers: int,
    days: int,
    seed: int,
    start: str | None,
    rate: float | None,
    speed: float | None,
    jitter_s: float,
) -> None:
    """Generate a realistic synthetic company's events: the same seed gives the same events.

    \b
    Campaigns with claims and exposures, reps with commitments, approvals and amendments, orders with
    full, partial, late and missing deliveries, stockouts, tickets of every category, replies with and
    without discouraged phrases, service promises, resolutions and ratings.

    \b
      promise-ledger simulate --to-file company.jsonl --customers 500 --days 60
      promise-ledger simulate --to-kafka --customers 200 --rate 500     (PL_KAFKA_BOOTSTRAP)
      promise-ledger simulate --to-kafka --days 14 --speed 86400        (a day a second, ends now)
    """
    if (to_file is None) == (not to_kafka):
        raise CommandError("say where the events go: --to-file FILE or --to-kafka (one of them)", EXIT_USAGE)
    if not to_kafka and (rate is not None or speed is not None):
        raise CommandError("--rate and --speed pace publishing: they go with --to-kafka", EXIT_USAGE)
    start_ms = _parse_start(start, days, to_kafka)
    if to_file is not None:
        _write_file(to_file, simulate_events(customers=customers, days=days, seed=seed, start_ms=start_ms))
    elif speed is not None:
        _publish(_live_schedule(customers, days, seed, start_ms, speed, jitter_s), rate)
    else:
        if start is None:
            start_ms = _ending_before_now(customers, days, seed, start_ms)
        events = simulate_events(customers=customers, days=days, seed=seed, start_ms=start_ms)
        _publish([(0.0, event) for event in events], rate)
