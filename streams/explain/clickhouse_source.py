"""The story of one customer from ClickHouse: what the ledger said (alignment events) and the alerts.

Input events are not stored in ClickHouse, so this story has no terms beyond what alignment events carry
(due time, product, deal, rep, ...). Every query binds its values through clickhouse-driver (%(name)s) and
runs on ClickHouse 18.16 and on current ClickHouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from streams.explain.story import Story, build_story
from streams.sink.rows import ALERTS, ALIGNMENT_EVENTS, TableLayout

# A customer id itself wins over a promise or ticket id that happens to be spelled the same.
# (The table is ordered by customer: a lookup by promise or ticket id scans it; fine for one question.)
CUSTOMER_OF_ID = """
SELECT customer_id
FROM alignment_events
WHERE customer_id != ''
  AND (customer_id = %(id)s OR promise_id = %(id)s OR ticket_id = %(id)s OR has(promise_ids, %(id)s))
ORDER BY customer_id = %(id)s DESC, customer_id
LIMIT 1
"""


def _select(layout: TableLayout, id_column: str) -> str:
    columns = ", ".join(column.name for column in layout.columns)
    return (
        f"SELECT {columns} FROM {layout.table} FINAL "
        f"WHERE customer_id = %(customer_id)s ORDER BY at_ms, {id_column}"
    )


ALIGNMENT_EVENTS_OF_CUSTOMER = _select(ALIGNMENT_EVENTS, "alignment_id")
ALERTS_OF_CUSTOMER = _select(ALERTS, "alert_id")


class Query(Protocol):
    def execute(self, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


#: columns whose empty value ('' / 0) means "absent" (None in the decoded record)
_ABSENT_WHEN_EMPTY = frozenset({"due_at"})


def _record(layout: TableLayout, row: Sequence[Any]) -> dict[str, Any]:
    """A row back as the decoded record it was made from: '' and absent numbers become None again."""
    record: dict[str, Any] = {}
    for column, value in zip(layout.columns, row, strict=True):
        empty_string = column.clickhouse_type == "String" and value == ""
        if empty_string or (column.source in _ABSENT_WHEN_EMPTY and value == 0):
            value = None
        elif column.clickhouse_type.startswith("Array"):
            value = list(value)
        record[column.source] = value
    if layout is ALIGNMENT_EVENTS and record.get("type") != "FULFILLED_LATE":
        record["delay_s"] = None  # only a late fulfilment carries a delay; 0 is the column's filler
    return record


def customer_of(client: Query, subject: str) -> str | None:
    rows = client.execute(CUSTOMER_OF_ID, {"id": subject})
    return str(rows[0][0]) if rows else None


def read_story(client: Query, subject: str) -> Story | None:
    """The story of the customer ``subject`` names (customer, promise or ticket id); None if unknown."""
    customer_id = customer_of(client, subject)
    if customer_id is None:
        return None
    params = {"customer_id": customer_id}
    events = [_record(ALIGNMENT_EVENTS, row) for row in client.execute(ALIGNMENT_EVENTS_OF_CUSTOMER, params)]
    alerts = [_record(ALERTS, row) for row in client.execute(ALERTS_OF_CUSTOMER, params)]
    return build_story(subject, customer_id, "clickhouse", events, alerts)
