"""The sink process: Kafka output topics in, ClickHouse rows out, offsets committed after inserts.

At-least-once by construction: offsets are committed only once every table buffer has flushed, so a
crash or an outage replays rows that ClickHouse may already hold; the ReplacingMergeTree tables and
the ``FINAL`` views make those replays count once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from streams.commits import commit_or_defer
from streams.sink.batch import TableSink

log = logging.getLogger(__name__)

ROWS_WRITTEN = Counter("ledger_sink_rows_written_total", "Rows inserted into ClickHouse", ["table"])
FLUSH_FAILURES = Counter("ledger_sink_flush_failures_total", "Failed ClickHouse inserts (retried)", ["table"])
UNDECODABLE = Counter("ledger_sink_undecodable_total", "Output records the sink could not decode", ["topic"])
PENDING_ROWS = Gauge("ledger_sink_pending_rows", "Rows buffered and not yet in ClickHouse")
CLICKHOUSE_UP = Gauge("ledger_sink_clickhouse_up", "1 while the last insert succeeded, 0 while retrying")
# While an insert is retried the sink reads nothing more, so the backlog lives in Kafka, not in the buffer.
BACKLOG = Gauge("ledger_sink_backlog_records", "Records in Kafka past the committed offsets, while retrying")


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes


class Consumer(Protocol):
    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> Mapping[Any, list[Any]]: ...
    def commit(self, offsets: Mapping[Any, Any] | None = None) -> None: ...
    def assignment(self) -> set[Any]: ...
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
    ) -> None:
        self._consumer = consumer
        self._routes = routes
        self._batching = batching
        self._sleep = sleep
        self._monotonic = monotonic
        self._pending = 0
        self._last_flush = monotonic()

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Poll, batch and flush until asked to stop; a last flush then gets one try per table."""
        while not should_stop():
            self.poll_once(should_stop)
        self.flush_and_commit(give_up=lambda: True)

    def poll_once(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        try:
            batches = self._consumer.poll(timeout_ms=200, max_records=self._batching.max_rows)
        except KafkaError as error:
            # kafka-python raises from poll() while the broker is away; the next poll reconnects.
            if not error.retriable:
                raise
            log.warning("Kafka unavailable (%s); retrying", type(error).__name__)
            self._sleep(1.0)
            return
        for records in batches.values():
            for record in records:
                self._add(record)
        PENDING_ROWS.set(self._pending)
        full = self._pending >= self._batching.max_rows
        due = self._pending and self._monotonic() - self._last_flush >= self._batching.max_wait_s
        if full or due:
            self.flush_and_commit(give_up=should_stop)

    def _add(self, record: Record) -> None:
        route = self._routes[record.topic]
        try:
            decoded = route.decode(record.value)
        except Exception as error:  # a corrupt output record must not stop the ledger
            UNDECODABLE.labels(record.topic).inc()
            log.error(
                "cannot decode %s[%d]@%d (%s); left in the topic",
                record.topic,
                record.partition,
                record.offset,
                type(error).__name__,
            )
            return
        route.sink.add(route.shape(decoded))
        self._pending += 1

    def flush_and_commit(self, give_up: Callable[[], bool]) -> bool:
        """Flush every table, retrying with backoff while ClickHouse is unreachable; then commit.

        Returns False, committing nothing, when ``give_up`` says to stop retrying.
        """
        for route in self._routes.values():
            if not self._flush_with_retry(route.sink, give_up):
                return False
        # The rows are in ClickHouse; if the commit is deferred the next one covers these offsets (a
        # crash first would replay them, which the FINAL views count once).
        commit_or_defer(self._consumer)
        self._pending = 0
        PENDING_ROWS.set(0)
        self._last_flush = self._monotonic()
        return True

    def _flush_with_retry(self, sink: TableSink, give_up: Callable[[], bool]) -> bool:
        delay = self._batching.retry_initial_s
        while True:
            try:
                written = sink.flush()
            except Exception as error:
                FLUSH_FAILURES.labels(sink.table).inc()
                CLICKHOUSE_UP.set(0)
                # The exception type and table only: driver messages can echo connection details.
                log.warning("insert into %s failed (%s)", sink.table, type(error).__name__)
                self._report_backlog()
                if give_up():
                    return False
                self._sleep(delay)
                delay = min(delay * 2, self._batching.retry_max_s)
                continue
            BACKLOG.set(0)
            CLICKHOUSE_UP.set(1)
            if written:
                ROWS_WRITTEN.labels(sink.table).inc(written)
            return True

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
