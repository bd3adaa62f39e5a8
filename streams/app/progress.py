"""How far the worker has read its input, as facts it can prove: end offsets asked of the broker at a
known wall time. The merge (merge.py) and the idle clock (SPEC §5) rely on nothing else.

A consumer's own view of a partition's end (the high-water mark of its last fetch response) can be
seconds old: a burst published since is invisible in it, and a worker that trusted it released records
ahead of earlier ones still on their way, and moved its idle clock past a backfill it had not read yet
(issue "Every alert true"). Kafka Streams' ``max.task.idle.ms`` and Flink's idleness solve the same
problem by waiting; here the wait ends with a proof instead of a timeout:

- **Complete through a time.** End offset ``e`` of a topic-partition, asked at wall time ``W``, holds
  every record appended before ``W``. Once the worker has received everything before ``e``, no record
  the producer stamped at or before ``W - delivery_bound`` can still arrive (a record is appended
  within ``delivery_bound`` of its stamp; ``streams.publish`` stamps at or ahead of wall time).
- **Caught up at W.** Every input topic of the partition is read to the end offsets asked at ``W``,
  the partition's merge buffer is empty, and no record of the partition was received during the
  ``quiet`` before ``W``. Then all input published before ``W`` is applied, and the publication has
  paused: a burst (a backfill, a redrive, a source catching up) whose records keep coming closer than
  ``quiet`` apart is never overtaken. The idle clock may then move to ``W - grace``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NOT_KNOWN = -(2**63)


@dataclass(frozen=True, slots=True)
class _EndOffset:
    offset: int
    asked_at_ms: int


class InputProgress:
    def __init__(self, topics: Sequence[str], *, delivery_bound_ms: int, quiet_ms: int) -> None:
        self._topics = tuple(topics)
        self._delivery_bound_ms = delivery_bound_ms
        self._quiet_ms = quiet_ms
        self._ends: dict[tuple[str, int], _EndOffset] = {}
        self._heard_at_ms: dict[int, int] = {}

    def asked(self, ends: Mapping[tuple[str, int], int], asked_at_ms: int) -> None:
        """End offsets the broker answered to a request sent at ``asked_at_ms`` (wall time)."""
        for topic_partition, offset in ends.items():
            self._ends[topic_partition] = _EndOffset(offset, asked_at_ms)

    def heard(self, partition: int, now_ms: int) -> None:
        """A record of one of the partition's input topics was received (in sequence or not)."""
        if now_ms > self._heard_at_ms.get(partition, NOT_KNOWN):
            self._heard_at_ms[partition] = now_ms

    def end(self, topic: str, partition: int) -> int | None:
        known = self._ends.get((topic, partition))
        return None if known is None else known.offset

    def complete_through(self, topic: str, partition: int, position: int) -> int:
        """The latest record timestamp (ms) up to which the topic-partition, received up to
        ``position``, can hold nothing more; ``NOT_KNOWN`` when nothing is proven."""
        known = self._ends.get((topic, partition))
        if known is None or position < known.offset:
            return NOT_KNOWN
        return known.asked_at_ms - self._delivery_bound_ms

    def caught_up_at(self, partition: int, positions: Mapping[str, int]) -> int | None:
        """The wall time ``W`` at which the partition is proven caught up and quiet (see the module
        docstring), or None. ``positions``: per input topic, the offset after the last record received
        in sequence. The caller checks that the merge buffer is empty."""
        asked_at = None
        for topic in self._topics:
            known = self._ends.get((topic, partition))
            if known is None or positions.get(topic, 0) < known.offset:
                return None
            asked_at = known.asked_at_ms if asked_at is None else min(asked_at, known.asked_at_ms)
        if asked_at is None or asked_at - self._heard_at_ms.get(partition, NOT_KNOWN) < self._quiet_ms:
            return None
        return asked_at

    def forget(self, partitions: set[int]) -> None:
        self._ends = {tp: end for tp, end in self._ends.items() if tp[1] not in partitions}
        for partition in partitions:
            self._heard_at_ms.pop(partition, None)
