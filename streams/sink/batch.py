"""A ClickHouse table sink: ``add`` buffers, ``flush`` inserts; the caller commits only after flush.

Modelled on the batching-sink idea (Quix Streams): a sink never commits offsets itself, so a failed
flush keeps the rows not yet inserted and the offsets stay uncommitted; the rows are tried again, and
a duplicate that reaches the table is absorbed by its ReplacingMergeTree key.

A row ClickHouse refuses for good must not hold up the rows behind it: when an insert fails for good
the batch is halved until the refused rows stand alone; the others are inserted, and each refused
row is set aside in ``sink_dead_letters`` with the reason and the Kafka record it came from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from prometheus_client import Counter

from streams.sink.failures import Failure, classify, too_many_partitions
from streams.sink.rows import SINK_DEAD_LETTERS, RowRefused, TableLayout

log = logging.getLogger(__name__)

ROWS_WRITTEN = Counter("ledger_sink_rows_written_total", "Rows inserted into ClickHouse", ["table"])
ROWS_REFUSED = Counter(
    "ledger_sink_rows_refused_total",
    "Rows set aside in sink_dead_letters instead of their table",
    ["table", "reason"],
)

# Reasons a row is set aside.
UNSTORABLE_VALUE = "unstorable_value"  # a value its column cannot hold (found before inserting)
CLICKHOUSE_REFUSED = "clickhouse_refused"  # the driver or the server refused the row for good
UNDECODABLE = "undecodable"  # the Kafka record is not a valid output record

_ERROR_TEXT_MAX = 2_000

Row = tuple[Any, ...]


class Inserter(Protocol):
    def execute(self, query: str, params: Any = None, types_check: bool = False) -> Any: ...


class Source(Protocol):
    """The Kafka record a row came from (a kafka-python ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


class TableSink:
    def __init__(
        self,
        inserter: Inserter,
        layout: TableLayout,
        dead_letters: TableSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inserter = inserter
        self._layout = layout
        self._dead_letters = dead_letters
        self._clock = clock
        self._buffer: list[Row] = []
        self._sources: list[Source | None] = []
        # Rows taken out of the buffer and not yet inserted: a flush that failed halfway goes on here.
        self._chunks: list[tuple[list[Row], list[Source | None]]] = []

    @property
    def table(self) -> str:
        return self._layout.table

    @property
    def dead_letters(self) -> TableSink | None:
        return self._dead_letters

    def __len__(self) -> int:
        return len(self._buffer) + sum(len(rows) for rows, _ in self._chunks)

    def add(self, record: Mapping[str, Any], source: Source | None = None) -> None:
        try:
            row = self._layout.row(record)
        except RowRefused as refusal:
            self.set_aside(source, UNSTORABLE_VALUE, str(refusal))
            return
        self._buffer.append(row)
        self._sources.append(source)

    def set_aside(self, source: Source | None, reason: str, error: str) -> None:
        """Send the row from ``source`` to the dead-letter table instead of this one."""
        ROWS_REFUSED.labels(self.table, reason).inc()
        where = f"{source.topic}[{source.partition}]@{source.offset}" if source is not None else "a row"
        # The error text goes to the table only: it may quote the value, which a customer wrote.
        log.warning("%s set aside from %s (%s)", where, self.table, reason)
        if self._dead_letters is None:
            log.error("%s refused by %s and nowhere to set it aside: %s", where, self.table, error[:200])
            return
        value = source.value if source is not None else None
        self._dead_letters.add(
            {
                "source_topic": source.topic if source is not None else "",
                "source_partition": source.partition if source is not None else 0,
                "source_offset": source.offset if source is not None else 0,
                "target_table": self.table,
                "reason": reason,
                "error": error[:_ERROR_TEXT_MAX],
                "value_hex": value.hex() if value else "",
                "refused_at": int(self._clock() * 1000),
            }
        )

    def flush(self) -> int:
        """Insert everything buffered; returns the rows inserted.

        Rows refused for good are set aside. On a transient failure the error propagates and the rows
        not yet inserted stay for the next flush.
        """
        if self._buffer:
            self._chunks.append((self._buffer, self._sources))
            self._buffer, self._sources = [], []
        written = 0
        try:
            while self._chunks:
                rows, sources = self._chunks[-1]
                try:
                    # Values travel as data in the native protocol, never spliced into the SQL text.
                    self._inserter.execute(self._layout.insert_statement, rows)
                except Exception as error:
                    if too_many_partitions(error) and len(rows) > 1:
                        self._chunks.pop()
                        self._halve(rows, sources)
                        continue
                    if classify(error) is Failure.TRANSIENT:
                        raise
                    self._chunks.pop()
                    self._refused(rows, sources, error)
                    continue
                self._chunks.pop()
                written += len(rows)
        finally:
            if written:
                ROWS_WRITTEN.labels(self.table).inc(written)
        return written

    def _refused(self, rows: list[Row], sources: list[Source | None], error: Exception) -> None:
        if len(rows) == 1:
            self.set_aside(sources[0], CLICKHOUSE_REFUSED, f"{type(error).__name__}: {error}")
            return
        # Halving finds k refused rows among n in about 2k·log2(n/k) inserts; a refused insert
        # writes nothing, so each half is tried whole.
        self._halve(rows, sources)

    def _halve(self, rows: list[Row], sources: list[Source | None]) -> None:
        middle = len(rows) // 2
        self._chunks.append((rows[middle:], sources[middle:]))
        self._chunks.append((rows[:middle], sources[:middle]))


def dead_letter_sink(inserter: Inserter) -> TableSink:
    """The table every other sink sets its refused rows aside in."""
    return TableSink(inserter, SINK_DEAD_LETTERS)
