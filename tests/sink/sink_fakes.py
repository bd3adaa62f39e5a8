"""A consumer and a ClickHouse the sink runner can be driven with, on a clock the test controls."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import TopicPartition


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass
class FakeConsumer:
    """Hands out queued records of partitions that are not paused; records every call with its time.

    A poll with nothing to return takes its whole timeout, like kafka-python's. ``on_poll`` lets a test
    change the assignment in the middle of a poll, as a rebalance does.
    """

    clock: FakeClock
    assigned: set[TopicPartition]
    queued: list[FakeRecord] = field(default_factory=list)
    calls: list[tuple[str, float, Any]] = field(default_factory=list)
    on_poll: Callable[[FakeConsumer], None] | None = None
    _paused: set[TopicPartition] = field(default_factory=set)
    _position: dict[TopicPartition, int] = field(default_factory=dict)

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        self.calls.append(("poll", self.clock.now, frozenset(self._paused)))
        if self.on_poll is not None:
            self.on_poll(self)
        out: dict[TopicPartition, list[Any]] = {}
        for record in list(self.queued):
            tp = TopicPartition(record.topic, record.partition)
            if tp in self.assigned and tp not in self._paused:
                out.setdefault(tp, []).append(record)
                self.queued.remove(record)
                self._position[tp] = record.offset + 1
        if not out:
            self.clock.sleep(timeout_ms / 1000)
        return out

    def commit(self, offsets: Any = None) -> None:
        self.calls.append(("commit", self.clock.now, dict(self._position)))

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *partitions: TopicPartition) -> None:
        self.calls.append(("pause", self.clock.now, frozenset(partitions)))
        self._paused |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.calls.append(("resume", self.clock.now, frozenset(partitions)))
        self._paused -= set(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in partitions}

    def committed(self, partition: TopicPartition) -> int | None:
        return None

    def named(self, name: str) -> list[tuple[str, float, Any]]:
        return [call for call in self.calls if call[0] == name]


class FakeClickHouse:
    """Keeps inserted rows per table; the first ``failures`` inserts (into ``failing_table``, or any)
    raise ``error`` instead."""

    def __init__(
        self,
        failures: int = 0,
        error: Callable[[], Exception] | None = None,
        failing_table: str | None = None,
    ) -> None:
        self.failures = failures
        self._error = error
        self._failing_table = failing_table
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self.attempts = 0

    def execute(self, query: str, params: Any = None, types_check: bool = False) -> None:
        self.attempts += 1
        match = re.match(r"INSERT INTO (\w+)", query)
        assert match, query
        table = match.group(1)
        if self.failures > 0 and self._failing_table in (None, table):
            self.failures -= 1
            assert self._error is not None
            raise self._error()
        self.rows.setdefault(table, []).extend(params)
