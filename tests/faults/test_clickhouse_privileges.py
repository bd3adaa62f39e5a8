"""The pipeline's ClickHouse account can write and read its tables but cannot create, alter or drop."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_driver.errors import ServerException

from streams.sink.batch import TableSink
from streams.sink.rows import ALIGNMENT_EVENTS
from streams.sink.schema import apply_schema
from tests.clickhouse_engines import admin_client, pipeline_client

pytestmark = [pytest.mark.stack, pytest.mark.faults]

FORBIDDEN = {
    "drop a table": "DROP TABLE alignment_events",
    "drop a view": "DROP TABLE promise_state",
    "drop the database": "DROP DATABASE {database}",
    "create a table": "CREATE TABLE intruder (x UInt8) ENGINE = Memory",
    "alter a table": "ALTER TABLE alignment_events DROP COLUMN reason",
    "rename a table": "RENAME TABLE alignment_events TO gone",
}


@pytest.fixture
def schema_applied(stack: Any, scratch_database: str) -> str:
    admin = admin_client(stack, scratch_database)
    apply_schema(admin)
    admin.disconnect()
    return scratch_database


def test_the_pipeline_account_inserts_and_reads(stack: Any, schema_applied: str) -> None:
    client = pipeline_client(stack, schema_applied)
    sink = TableSink(client, ALIGNMENT_EVENTS)
    sink.add(
        {
            "alignment_id": "priv-1",
            "type": "PROMISE_OPENED",
            "customer_id": "c-priv",
            "at": 1_772_000_000_000,
            "promise_id": "p-priv",
            "department": "SALES",
            "kind": "DELIVERY",
        }
    )
    sink.flush()
    assert client.execute("SELECT alignment_id, customer_id FROM alignment_events FINAL") == [
        ("priv-1", "c-priv")
    ]
    assert client.execute("SELECT count() FROM promise_state") == [(1,)]


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_the_pipeline_account_cannot_change_the_schema(
    stack: Any, schema_applied: str, statement: str
) -> None:
    client = pipeline_client(stack, schema_applied)
    with pytest.raises(ServerException, match=r"(?i)DDL"):
        client.execute(statement.format(database=schema_applied))
    tables = {name for (name,) in admin_client(stack, schema_applied).execute("SHOW TABLES")}
    assert {"alignment_events", "alerts", "dead_letters", "promise_state"} <= tables
    assert "intruder" not in tables and "gone" not in tables


def test_the_admin_account_owns_the_schema(stack: Any, schema_applied: str) -> None:
    admin = admin_client(stack, schema_applied)
    admin.execute("CREATE TABLE scratch_owned (x UInt8) ENGINE = Memory")
    admin.execute("DROP TABLE scratch_owned")
    assert "scratch_owned" not in {name for (name,) in admin.execute("SHOW TABLES")}
