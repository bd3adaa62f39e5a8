"""Making sure the agent receives every offset of every source partition, in order.

Faust's stream drops records it has already fetched while a rebalance or a table recovery is under
way, relying on a seek to the committed offsets to fetch them again; a partition with no committed
offset yet is not sought, so its dropped records were never seen (a worker restarted, or a second one
started, within the first commit interval lost input). The agent therefore checks the offsets itself:
a record past a gap, or a partition that goes quiet short of its end, means the partition is fetched
again from the first offset missing. Going back is always safe: the correlator skips records its
state already holds, and second copies of a record are dropped here.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    NEXT = "next"  # the record the partition owes: hand it on
    SECOND_COPY = "second copy"  # already received: drop it
    PAST_A_GAP = "past a gap"  # records before it were skipped: drop it, fetch the gap again


@dataclass(slots=True)
class _Position:
    next_offset: int
    heard_at: float  # when the partition last delivered a record, or was last sent back
    rewound_at: float = float("-inf")


class OffsetSequencer:
    def __init__(self, *, retry_after_s: float = 1.0, quiet_after_s: float = 2.0) -> None:
        self._retry_after_s = retry_after_s
        self._quiet_after_s = quiet_after_s
        self._positions: dict[Hashable, _Position] = {}

    def knows(self, partition: Hashable) -> bool:
        return partition in self._positions

    def next_offset(self, partition: Hashable) -> int | None:
        """The offset the partition owes next (everything before it was received), if known."""
        position = self._positions.get(partition)
        return None if position is None else position.next_offset

    def resume(self, partition: Hashable, offset: int, now: float) -> None:
        """The partition's records start at ``offset`` for this worker (its committed offset, or its
        first one)."""
        self._positions[partition] = _Position(offset, now)

    def admit(self, partition: Hashable, offset: int, now: float) -> Verdict:
        position = self._positions[partition]
        position.heard_at = now
        if offset == position.next_offset:
            position.next_offset += 1
            return Verdict.NEXT
        return Verdict.SECOND_COPY if offset < position.next_offset else Verdict.PAST_A_GAP

    def rewind_to(self, partition: Hashable, now: float) -> int | None:
        """Where to send a partition found past a gap; None if it was sent back a moment ago (the
        records already fetched after the gap still drain, and must not each trigger a seek)."""
        position = self._positions[partition]
        if now - position.rewound_at < self._retry_after_s:
            return None
        position.rewound_at = now
        return position.next_offset

    def stalled(self, ends: Mapping[Hashable, int], now: float) -> dict[Hashable, int]:
        """Partitions quiet for a while though records are left before ``ends``, with the offset to
        fetch them from: the records at the end of a partition can be dropped with no later record
        to reveal the gap."""
        stalled = {}
        for partition, end in ends.items():
            position = self._positions.get(partition)
            if position is None or position.next_offset >= end:
                continue
            if now - max(position.heard_at, position.rewound_at) >= self._quiet_after_s:
                position.rewound_at = now
                stalled[partition] = position.next_offset
        return stalled

    def forget(self, partitions: set[Hashable]) -> None:
        for partition in partitions:
            self._positions.pop(partition, None)
