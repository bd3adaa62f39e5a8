"""How a decoded alignment event, alert or dead letter becomes a ClickHouse row.

Absent values become the column's empty value ('' / 0 / []) because the tables keep sorting keys
free of ``Nullable`` (see schema.py). A value its column cannot hold (a negative or too large
number, a timestamp past DateTime's range, a wrong type) refuses the row with ``RowRefused``: the
sink sets such a row aside instead of letting one value stop every insert.
"""

from __future__ import annotations

import operator
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_EMPTY_BY_TYPE: dict[str, Any] = {"String": "", "UInt64": 0, "UInt32": 0, "Int64": 0, "Float64": 0.0}

_INT_RANGES: dict[str, tuple[int, int]] = {
    "UInt64": (0, 2**64 - 1),
    "UInt32": (0, 2**32 - 1),
    "Int64": (-(2**63), 2**63 - 1),
}
# The tables derive a DateTime (seconds in a UInt32) from these milliseconds; past it the partition
# and every date in the views would silently wrap.
DATETIME_MS_MAX = (2**32 - 1) * 1000 + 999
_FLOAT_INT_LIMIT = 2**1023  # larger ints have no float form
_STR_ONLY = frozenset((str,))

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 3


class RowRefused(ValueError):
    """A record has a value its column cannot hold; ``str()`` names the column and the value."""


def _fits(clickhouse_type: str, maximum: int | None) -> Callable[[Any], bool]:
    if clickhouse_type == "String":
        return lambda value: type(value) is str
    if clickhouse_type == "Array(String)":
        return lambda value: type(value) is list and (not value or set(map(type, value)) <= _STR_ONLY)
    if clickhouse_type == "Float64":
        return lambda value: (
            type(value) is float or (type(value) is int and -_FLOAT_INT_LIMIT < value < _FLOAT_INT_LIMIT)
        )
    low, high = _INT_RANGES[clickhouse_type]
    if maximum is not None:
        high = min(high, maximum)
    return lambda value: type(value) is int and low <= value <= high


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    clickhouse_type: str
    source: str  # key in the decoded record
    maximum: int | None = None  # tighter than the type's own bound

    @property
    def empty(self) -> Any:
        return [] if self.clickhouse_type.startswith("Array") else _EMPTY_BY_TYPE[self.clickhouse_type]

    def fits(self) -> Callable[[Any], bool]:
        return _fits(self.clickhouse_type, self.maximum)

    def refusal(self, value: Any) -> str:
        if self.clickhouse_type in _INT_RANGES and type(value) is int:
            low, high = _INT_RANGES[self.clickhouse_type]
            high = high if self.maximum is None else min(high, self.maximum)
            return f"{self.name}: {_short.repr(value)} is outside [{low}, {high}]"
        return f"{self.name}: {type(value).__name__} {_short.repr(value)} does not fit {self.clickhouse_type}"


def _timestamp(name: str, source: str) -> Column:
    return Column(name, "UInt64", source, maximum=DATETIME_MS_MAX)


@dataclass(frozen=True)
class TableLayout:
    table: str
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        # (record key, value when absent) per column, worked out once: row() runs for every record.
        object.__setattr__(self, "_sources", tuple((column.source, column.empty) for column in self.columns))
        object.__setattr__(self, "_fits", tuple(column.fits() for column in self.columns))
        # The common row has exactly the empty values' types; then only numbers' ranges and arrays'
        # items are left to check, which spares a call per string column (about half the cost).
        object.__setattr__(self, "_types", tuple(type(column.empty) for column in self.columns))
        bounded = [i for i, column in enumerate(self.columns) if column.clickhouse_type != "String"]
        object.__setattr__(self, "_bounded_fits", tuple(self._fits[i] for i in bounded))
        pick = operator.itemgetter(*bounded) if bounded else (lambda row: ())
        object.__setattr__(self, "_pick_bounded", pick if len(bounded) != 1 else lambda row: (pick(row),))

    @property
    def insert_statement(self) -> str:
        names = ", ".join(column.name for column in self.columns)
        return f"INSERT INTO {self.table} ({names}) VALUES"

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The record as a row of this table; ``RowRefused`` if a column cannot hold its value."""
        get = record.get
        row = tuple(empty if (value := get(source)) is None else value for source, empty in self._sources)
        if tuple(map(type, row)) == self._types and all(
            map(operator.call, self._bounded_fits, self._pick_bounded(row))
        ):
            return row
        for column, fits, value in zip(self.columns, self._fits, row, strict=True):
            if not fits(value):
                raise RowRefused(column.refusal(value))
        return row  # e.g. an int for a Float64 column


def _strings(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, "String", name) for name in names)


ALIGNMENT_EVENTS = TableLayout(
    "alignment_events",
    (
        *_strings("alignment_id", "type", "customer_id"),
        _timestamp("at_ms", "at"),
        *_strings("promise_id", "department", "kind", "reason"),
        Column("due_at_ms", "UInt64", "due_at"),
        *_strings("ticket_id", "root_department"),
        Column("promise_ids", "Array(String)", "promise_ids"),
        Column("phrases", "Array(String)", "phrases"),
        *_strings("claim_id", "campaign_id", "product", "rep_name", "agent_name", "deal_id", "order_id"),
        Column("delay_s", "Int64", "delay_s"),
        *_strings("severity", "cause_event_id"),
    ),
)

ALERTS = TableLayout(
    "alerts",
    (
        *_strings("alert_id", "dedup_key", "group_key", "severity", "type", "customer_id", "promise_id"),
        *_strings("department", "kind", "reason"),
        _timestamp("at_ms", "at"),
        Column("due_at_ms", "UInt64", "due_at"),
        *_strings("claim_id", "product", "rep_name"),
        Column("customer_value", "Float64", "customer_value"),
    ),
)

DEAD_LETTERS = TableLayout(
    "dead_letters",
    (
        *_strings("reason", "detail", "topic"),
        Column("partition", "UInt32", "partition"),
        Column("offset", "UInt64", "offset"),
        Column("value_size", "UInt32", "value_size"),
        _timestamp("dead_lettered_at_ms", "dead_lettered_at"),
    ),
)

# Rows ClickHouse refused for good (or the sink could not shape or decode), with the Kafka record
# they came from, so that they can be shown and redriven after a fix.
SINK_DEAD_LETTERS = TableLayout(
    "sink_dead_letters",
    (
        Column("source_topic", "String", "source_topic"),
        Column("source_partition", "UInt32", "source_partition"),
        Column("source_offset", "UInt64", "source_offset"),
        *_strings("target_table", "reason", "error", "value_hex"),
        _timestamp("refused_at_ms", "refused_at"),
    ),
)


def dead_letter_record(dead_letter: Mapping[str, Any]) -> dict[str, Any]:
    """The table keeps the size of the bad payload, not the payload: the bytes stay in the DLQ topic."""
    value: bytes | None = dead_letter.get("value")
    return {**dead_letter, "value_size": len(value) if value else 0}


def rows(layout: TableLayout, records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return [layout.row(record) for record in records]
