"""Sending dead letters back to where they came from, after the cause was fixed.

As in Snowplow's recovery of failed events, the original bytes go back unchanged to the source topic,
here to the very partition they were read from: a customer's records stay on the partition that
holds its state, next to the customer's records of the other input topics (co-partitioning). The
worker treats them as new records: it de-duplicates by ``event_id`` within its dedupe window, and a
dead-lettered event never used its id up, so a redrive sent twice is harmless. Still, each redriven
record carries a ``pl-redriven-from`` header, and a marker per dead letter in the compacted
``alignment.dlq-redriven`` lets the next redrive of the same selection skip what was sent already.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from streams.dlq.letters import SINK, UNREADABLE, DeadLetter, Marker, marker_of
from streams.settings import DEAD_LETTER_TOPIC

REDRIVEN_FROM_HEADER = "pl-redriven-from"
#: records confirmed by the broker before their markers are written: what a crash can send twice
CHUNK = 500


class Outgoing(NamedTuple):
    topic: str
    partition: int | None  # None: the key's partition (a dead letter that did not record its own)
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class RedriveTarget(Protocol):
    def partitions_for(self, topic: str) -> set[int] | None:
        """The topic's partitions, None when it does not exist."""
        ...

    def send(self, records: Sequence[Outgoing]) -> list[str]:
        """Publish and wait for the broker's acknowledgement of every record (acks=all); the
        positions (``topic:partition:offset``) they were written at, in order. Raises otherwise."""
        ...

    def mark(self, markers: Sequence[Marker]) -> None:
        """Record the markers, confirmed by the broker before it returns."""
        ...


@dataclass(slots=True)
class Plan:
    to_send: list[DeadLetter] = field(default_factory=list)
    already_redriven: list[DeadLetter] = field(default_factory=list)
    #: dead letters that cannot go back, with why
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)


def plan(
    selected: Iterable[DeadLetter],
    markers: Mapping[str, Marker],
    partitions_for: Callable[[str], set[int] | None],
    *,
    again: bool = False,
) -> Plan:
    """What a redrive of ``selected`` would send, skip, and refuse. Nothing is sent."""
    result = Plan()
    known: dict[str, set[int] | None] = {}
    for letter in selected:
        if letter.reason == UNREADABLE:
            result.refused.append((letter, "not a DeadLetter record: its source is unknown"))
            continue
        if letter.origin == SINK and letter.topic == DEAD_LETTER_TOPIC:
            # The row copies a dead letter of alignment.dlq: sending it back would make a second one.
            why = f"a copy of a dead letter of {DEAD_LETTER_TOPIC}: redrive that one"
            result.refused.append((letter, why))
            continue
        if letter.origin == SINK and letter.value is None:
            result.refused.append((letter, "the sink kept no value to send back"))
            continue
        if not again and marker_of(letter, markers) is not None:
            result.already_redriven.append(letter)
            continue
        if letter.topic not in known:
            known[letter.topic] = partitions_for(letter.topic)
        partitions = known[letter.topic]
        if partitions is None:
            result.refused.append((letter, f"topic {letter.topic} does not exist"))
        elif letter.partition >= 0 and letter.partition not in partitions:
            result.refused.append(
                (letter, f"{letter.topic} has no partition {letter.partition} (it has {len(partitions)})")
            )
        else:
            result.to_send.append(letter)
    return result


def outgoing(letter: DeadLetter) -> Outgoing:
    return Outgoing(
        letter.topic,
        letter.partition if letter.partition >= 0 else None,
        letter.key,
        letter.value,
        [(REDRIVEN_FROM_HEADER, letter.where.encode())],
    )


def redrive(
    letters: Sequence[DeadLetter],
    target: RedriveTarget,
    wall_clock_ms: Callable[[], int],
    on_progress: Callable[[int], None] = lambda sent: None,
    chunk: int | None = None,
) -> int:
    """Send ``letters`` back in this order, a chunk at a time: each chunk confirmed by the broker,
    then its markers. A failure raises; the chunks before it stay sent and marked, so running the
    same redrive again goes on where this one stopped."""
    size = chunk or CHUNK
    sent = 0
    for start in range(0, len(letters), size):
        batch = letters[start : start + size]
        positions = target.send([outgoing(letter) for letter in batch])
        now = wall_clock_ms()
        target.mark(
            [
                Marker(letter.where, letter.fingerprint, position, now)
                for letter, position in zip(batch, positions, strict=True)
            ]
        )
        sent += len(batch)
        on_progress(len(batch))
    return sent
