"""`promise-ledger watch`: follow alignment.events live, one readable line (or JSON line) per event."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from streams.cli.errors import CommandError
from streams.contract import ms_to_iso
from streams.engine import ALIGNMENT_TYPES
from streams.settings import ALIGNMENT_TOPIC, Settings

if TYPE_CHECKING:
    from kafka import KafkaConsumer

POLL_TIMEOUT_MS = 500


@dataclass(frozen=True, slots=True)
class Filters:
    types: frozenset[str]
    departments: frozenset[str]
    customers: frozenset[str]

    def accept(self, event: Mapping[str, Any]) -> bool:
        if self.types and event.get("type") not in self.types:
            return False
        # a complaint belongs to the department it was traced to
        departments = {event.get("department"), event.get("root_department")}
        if self.departments and not departments & self.departments:
            return False
        return not self.customers or event.get("customer_id") in self.customers


def readable_line(event: Mapping[str, Any]) -> str:
    """time  TYPE  customer  promise  DEPARTMENT/KIND  reason (and what else the type carries)."""
    department = event.get("department") or event.get("root_department") or "-"
    kind = f"/{event['kind']}" if event.get("kind") else ""
    subject = event.get("promise_id") or event.get("ticket_id") or event.get("claim_id") or "-"
    extra = []
    if event.get("reason"):
        extra.append(str(event["reason"]))
    if event.get("promise_ids"):
        extra.append("traced to " + ",".join(event["promise_ids"]))
    if event.get("delay_s") is not None:
        extra.append(f"late by {event['delay_s']}s")
    if event.get("phrases"):
        extra.append("phrases " + ",".join(event["phrases"]))
    if event.get("severity"):
        extra.append(str(event["severity"]))
    if event.get("product") and event.get("type") == "CONTRADICTION":
        extra.append(f"product {event['product']}")
    return "  ".join(
        (
            ms_to_iso(event["at"]),
            f"{event['type']:<20}",
            f"customer {event.get('customer_id') or '-'}",
            f"{subject}",
            f"{department}{kind}",
            " ".join(extra),
        )
    ).rstrip()


def _consumer(settings: Settings, from_beginning: bool) -> KafkaConsumer:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        # No consumer group: watching must not move anyone's offsets or join a rebalance.
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
        )
    except KafkaError as error:
        raise CommandError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({type(error).__name__})"
        ) from None
    partitions = consumer.partitions_for_topic(ALIGNMENT_TOPIC)
    if not partitions:
        consumer.close()
        raise CommandError(f"topic {ALIGNMENT_TOPIC} does not exist on {settings.kafka_bootstrap}")
    assigned = [TopicPartition(ALIGNMENT_TOPIC, partition) for partition in sorted(partitions)]
    consumer.assign(assigned)
    if from_beginning:
        consumer.seek_to_beginning(*assigned)
    else:
        consumer.seek_to_end(*assigned)
        for partition in assigned:  # resolve the end now, so events published from here on are seen
            consumer.position(partition)
    return consumer


def _events(consumer: KafkaConsumer, should_stop: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    from streams.codec import DecodeError, decode_alignment

    while not should_stop():
        for records in consumer.poll(timeout_ms=POLL_TIMEOUT_MS).values():
            for record in records:
                try:
                    yield decode_alignment(record.value)
                except DecodeError as error:
                    click.echo(
                        f"promise-ledger watch: skipped partition {record.partition} offset {record.offset}: "
                        f"{error}",
                        err=True,
                    )


@click.command("watch")
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(ALIGNMENT_TYPES, case_sensitive=False),
    help="Only events of this type (repeatable).",
)
@click.option(
    "--department",
    "departments",
    multiple=True,
    type=click.Choice(["MARKETING", "SALES", "SERVICE", "UNATTRIBUTED"], case_sensitive=False),
    help="Only events of this department, or complaints rooted in it (repeatable).",
)
@click.option("--customer", "customers", multiple=True, metavar="C", help="Only this customer (repeatable).")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON lines: each event exactly as decoded from the topic."
)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event kept, not at the end.")
@click.option("--max", "max_events", type=click.IntRange(min=1), help="Stop after N matching events.")
def command(
    types: tuple[str, ...],
    departments: tuple[str, ...],
    customers: tuple[str, ...],
    as_json: bool,
    from_beginning: bool,
    max_events: int | None,
) -> int:
    """Follow alignment.events live: one line per event, as it arrives. Ctrl-C stops.

    Reads every partition without a consumer group, so it never disturbs the pipeline's consumers.
    Ordering is per customer (a topic partition), as on the topic. Reads PL_KAFKA_BOOTSTRAP.
    """
    filters = Filters(
        frozenset(t.upper() for t in types),
        frozenset(d.upper() for d in departments),
        frozenset(customers),
    )
    settings = Settings.from_env()
    try:
        consumer = _consumer(settings, from_beginning)
    except KeyboardInterrupt:  # Ctrl-C while still connecting
        return 0
    from streams.cli.service import stop_on_signals

    # From here Ctrl-C (or SIGTERM) only raises a flag: the loop ends between polls, never mid-line.
    should_stop = stop_on_signals()
    where = "the beginning" if from_beginning else "now"
    click.echo(
        f"watching {ALIGNMENT_TOPIC} on {settings.kafka_bootstrap} from {where}; Ctrl-C stops", err=True
    )
    shown = 0
    try:
        for event in _events(consumer, should_stop):
            if not filters.accept(event):
                continue
            click.echo(json.dumps(event, ensure_ascii=False) if as_json else readable_line(event))
            sys.stdout.flush()
            shown += 1
            if max_events is not None and shown >= max_events:
                break
    except BrokenPipeError:
        # `watch | head`: the reader left; point stdout at /dev/null so the exit flush stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        consumer.close()
    return 0
    where = "the beginning" if from_beginning else "now"
    click.echo(
        f"watching {ALIGNMENT_TOPIC} on {settings.kafka_bootstrap} from {where}; Ctrl-C stops", err=True
    )
    shown = 0
    try:
        for event in _events(consumer):
            if not filters.accept(event):
                continue
            click.echo(json.dumps(event, ensure_ascii=False) if as_json else readable_line(event))
            sys.stdout.flush()
            shown += 1
            if max_events is not None and shown >= max_events:
                break
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # `watch | head`: the reader left; point stdout at /dev/null so the exit flush stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        consumer.close()
    return 0
