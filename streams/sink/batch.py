"""A ClickHouse table sink: ``add`` buffers, ``flush`` inserts; the caller commits only after flush.

Modelled on the batching-sink idea (Quix Streams): a sink never commits offsets itself, so a failed
flush keeps the buffer and the offsets stay uncommitted; the rows are tried again, and a duplicate
that reaches the table is absorbed by its ReplacingMergeTree key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from streams.sink.rows import TableLayout


class Inserter(Protocol):
    def execute(self, query: str, params: Any = None, types_check: bool = False) -> Any: ...


class TableSink:
    def __init__(self, inserter: Inserter, layout: TableLayout) -> None:
        self._inserter = inserter
        self._layout = layout
        self._buffer: list[tuple[Any, ...]] = []

    @property
    def table(self) -> str:
        return self._layout.table

    def __len__(self) -> int:
        return len(self._buffer)

    def add(self, record: Mapping[str, Any]) -> None:
        self._buffer.append(self._layout.row(record))

    def flush(self) -> int:
        """Insert everything buffered; on error the buffer is kept and the error propagates."""
        if not self._buffer:
            return 0
        # Values travel as data in the native protocol, never spliced into the SQL text.
        self._inserter.execute(self._layout.insert_statement, self._buffer)
        flushed = len(self._buffer)
        self._buffer = []
        return flushed
