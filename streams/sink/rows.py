"""How a decoded alignment event, alert or dead letter becomes a ClickHouse row.

Absent values become the column's empty value ('' / 0 / []) because the tables keep sorting keys
free of ``Nullable`` (see schema.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_EMPTY_BY_TYPE: dict[str, Any] = {"String": "", "UInt64": 0, "UInt32": 0, "Int64": 0, "Float64": 0.0}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    clickhouse_type: str
    source: str  # key in the decoded record

    @property
    def empty(self) -> Any:
        return [] if self.clickhouse_type.startswith("Array") else _EMPTY_BY_TYPE[self.clickhouse_type]


@dataclass(frozen=True)
class TableLayout:
    table: str
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        # (record key, value when absent) per column, worked out once: row() runs for every record.
        object.__setattr__(self, "_sources", tuple((column.source, column.empty) for column in self.columns))

    @property
    def insert_statement(self) -> str:
        names = ", ".join(column.name for column in self.columns)
        return f"INSERT INTO {self.table} ({names}) VALUES"

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        get = record.get
        return tuple(empty if (value := get(source)) is None else value for source, empty in self._sources)


def _strings(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, "String", name) for name in names)


ALIGNMENT_EVENTS = TableLayout(
    "alignment_events",
    (
        *_strings("alignment_id", "type", "customer_id"),
        Column("at_ms", "UInt64", "at"),
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
        Column("at_ms", "UInt64", "at"),
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
        Column("dead_lettered_at_ms", "UInt64", "dead_lettered_at"),
    ),
)


def dead_letter_record(dead_letter: Mapping[str, Any]) -> dict[str, Any]:
    """The table keeps the size of the bad payload, not the payload: the bytes stay in the DLQ topic."""
    value: bytes | None = dead_letter.get("value")
    return {**dead_letter, "value_size": len(value) if value else 0}


def rows(layout: TableLayout, records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return [layout.row(record) for record in records]
