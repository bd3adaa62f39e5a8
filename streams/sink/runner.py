"""The sink process: Kafka output topics in, ClickHouse rows out, offsets committed after inserts.

At-least-once by construction: offsets are committed only once every table buffer has flushed, so a
crash or an outage replays rows that ClickHouse may already hold; the ReplacingMergeTree tables and
the ``FINAL`` views make those replays count once.

While inserts fail transiently the consumer's partitions are paused and ``poll()`` keeps being
called (it returns nothing then): an outage longer than ``max_poll_interval_ms`` would otherwise
make the broker give the partitions away, and the replacement would fail the same way. Quix Streams
does the same on a sink's backpressure.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from streams.commits import commit_or_defer
from streams.retry import Backoff
from streams.sink.batch import UNDECODABLE as UNDECODABLE_REASON
from streams.sink.batch import TableSink

log = logging.getLogger(__name__)

FLUSH_FAILURES = Counter("ledger_sink_flush_failures_total", "Failed ClickHouse inserts (retried)", ["table"])
UNDECODABLE = Counter("ledger_sink_undecodable_total", "Output records the sink could not decode", ["topic"])
PENDING_ROWS = Gauge("ledger_sink_pending_rows", "Rows buffered and not yet in ClickHouse")
CLICKHOUSE_UP = Gauge("ledger_sink_clickhouse_up", "1 while the last insert succeeded, 0 while retrying")
# While an insert is retried the sink reads nothing more, so the backlog lives in Kafka, not in the buffer.
BACKLOG = Gauge("ledger_sink_backlog_records", "Records in Kafka past the committed offsets, while retrying")
PAUSED = Gauge("ledger_sink_paused_partitions", "Partitions paused while ClickHouse inserts fail")

# Longest single poll() while paused, so that a stop request is seen within about a second.
_PAUSED_POLL_S = 1.0


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class Consumer(Protocol):
    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> Mapping[Any, list[Any]]: ...
    def commit(self, offsets: Mapping[Any, Any] | None = None) -> None: ...
    def assignment(self) -> set[Any]: ...
    def pause(self, *partitions: Any) -> None: ...
    def resume(self, *partitions: Any) -> None: ...
    def paused(self) -> set[Any]: ...
    def end_offsets(self, partitions: list[Any]) -> Mapping[Any, int]: ...
    def committed(self, partition: Any) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """What the sink does with one topic: decode its values, shape them, add them to a table."""

    decode: Callable[[bytes], Mapping[str, Any]]
    sink: TableSink
    shape: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict


@dataclass(frozen=True, slots=True)
class Batching:
    max_rows: int = 5_000
    max_wait_s: float = 1.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 15.0


class SinkRunner:
    def __init__(
        self,
        consumer: Consumer,
        routes: Mapping[str, Route],
        batching: Batching = Batching(),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self._consumer = consumer
        self._routes = routes
        self._batching = batching
        self._sleep = sleep
        self._monotonic = monotonic
        self._uniform = uniform
        self._sinks = _flush_order(routes)
        self._pending = 0
        self._paused = False
        self._last_flush = monotonic()

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Poll, batch and flush until asked to stop; a last flush then gets one try per table."""
        while not should_stop():
            self.poll_once(should_stop)
        self.flush_and_commit(give_up=lambda: True)

    def poll_once(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        batches = self._poll(timeout_ms=200)
        if batches is None:
            self._sleep(1.0)
            return
        self._add_all(batches)
        PENDING_ROWS.set(self._pending)
        full = self._pending >= self._batching.max_rows
        due = self._pending and self._monotonic() - self._last_flush >= self._batching.max_wait_s
        if full or due:
            self.flush_and_commit(give_up=should_stop)

    def _poll(self, timeout_ms: int) -> Mapping[Any, list[Any]] | None:
        """What poll() returned, or None while the broker is away."""
        try:
            return self._consumer.poll(timeout_ms=timeout_ms, max_records=self._batching.max_rows)
        except KafkaError as error:
            # kafka-python raises from poll() while the broker is away; the next poll reconnects.
            if not error.retriable:
                raise
            log.warning("Kafka unavailable (%s); retrying", type(error).__name__)
            return None

    def _add_all(self, batches: Mapping[Any, list[Any]]) -> None:
        for records in batches.values():
            for record in records:
                self._add(record)

    def _add(self, record: Record) -> None:
        route = self._routes[record.topic]
        self._pending += 1
        try:
            decoded = route.decode(record.value)
        except Exception as error:  # a corrupt output record must not stop the ledger
            UNDECODABLE.labels(record.topic).inc()
            log.error(
                "cannot decode %s[%d]@%d (%s); set aside",
                record.topic,
                record.partition,
                record.offset,
                type(error).__name__,
            )
            route.sink.set_aside(record, UNDECODABLE_REASON, f"{type(error).__name__}: {error}")
            return
        route.sink.add(route.shape(decoded), record)

    def flush_and_commit(self, give_up: Callable[[], bool]) -> bool:
        """Flush every table, retrying with backoff while ClickHouse is unreachable; then commit.

        Returns False, committing nothing, when ``give_up`` says to stop retrying.
        """
        while True:
            for sink in self._sinks:
                if not self._flush_with_retry(sink, give_up):
                    return False
            # Records polled while paused (from partitions a rebalance assigned) joined the buffers
            # of tables flushed already: the commit below covers them, so they go in first.
            if not any(len(sink) for sink in self._sinks):
                break
        # The rows are in ClickHouse; if the commit is deferred the next one covers these offsets (a
        # crash first would replay them, which the FINAL views count once).
        commit_or_defer(self._consumer)
        self._resume()
        self._pending = 0
        PENDING_ROWS.set(0)
        self._last_flush = self._monotonic()
        return True

    def _flush_with_retry(self, sink: TableSink, give_up: Callable[[], bool]) -> bool:
        backoff = Backoff(self._batching.retry_initial_s, self._batching.retry_max_s, uniform=self._uniform)
        while True:
            try:
                sink.flush()
            except Exception as error:  # flush() raises only failures worth retrying
                FLUSH_FAILURES.labels(sink.table).inc()
                CLICKHOUSE_UP.set(0)
                # The exception type and table only: driver messages can echo connection details.
                log.warning("insert into %s failed (%s); retrying", sink.table, type(error).__name__)
                self._report_backlog()
                if give_up():
                    return False
                self._wait_paused(backoff.next_delay(), give_up)
                continue
            BACKLOG.set(0)
            CLICKHOUSE_UP.set(1)
            return True

    def _wait_paused(self, delay_s: float, give_up: Callable[[], bool]) -> None:
        """Wait ``delay_s`` in poll() calls on paused partitions, which keep the group membership."""
        deadline = self._monotonic() + delay_s
        while not give_up() and (remaining := deadline - self._monotonic()) > 0:
            # Pausing again each round: partitions assigned by a rebalance start unpaused.
            self._pause()
            batches = self._poll(timeout_ms=max(1, int(min(remaining, _PAUSED_POLL_S) * 1000)))
            if batches is None:
                self._sleep(min(remaining, _PAUSED_POLL_S))
                continue
            self._add_all(batches)

    def _pause(self) -> None:
        partitions = self._consumer.assignment()
        if partitions:
            self._consumer.pause(*partitions)
        if not self._paused:
            log.info("%d partitions paused until ClickHouse takes rows again", len(partitions))
        self._paused = True
        PAUSED.set(len(partitions))

    def _resume(self) -> None:
        if not self._paused:
            return
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)
        log.info("%d partitions resumed", len(paused))
        self._paused = False
        PAUSED.set(0)

    def _report_backlog(self) -> None:
        """How far behind ClickHouse is, from Kafka (which is up even when ClickHouse is not)."""
        try:
            partitions = list(self._consumer.assignment())
            ends = self._consumer.end_offsets(partitions)
            backlog = sum(max(0, end - (self._consumer.committed(tp) or 0)) for tp, end in ends.items())
        except Exception as error:  # the broker may be unreachable too; the gauge then keeps its value
            log.debug("backlog unknown (%s)", type(error).__name__)
            return
        BACKLOG.set(backlog)


def _flush_order(routes: Mapping[str, Route]) -> list[TableSink]:
    """Each table once, and the tables rows are set aside in after the tables that set them aside."""
    sinks: list[TableSink] = []
    for route in routes.values():
        if route.sink not in sinks:
            sinks.append(route.sink)
    for sink in list(sinks):
        dead_letters = sink.dead_letters
        if dead_letters is not None and dead_letters not in sinks:
            sinks.append(dead_letters)
    return sinks
