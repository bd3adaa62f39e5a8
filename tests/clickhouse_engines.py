"""The two ClickHouse engines every SQL statement must run on, behind one small interface.

``server`` is the real ClickHouse server of the local stack (18.16 from Debian) via clickhouse-driver;
``chdb`` is current ClickHouse in-process. Inserts into chdb are rendered with clickhouse-driver's own
escaping, so both engines receive the same values.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from clickhouse_driver import Client
from clickhouse_driver.util.escape import escape_param, escape_params


def admin_client(stack: Any, database: str | None = None) -> Client:
    """The stack's ClickHouse as the admin account: the only one allowed DDL (the pipeline's is not)."""
    return Client(
        host="127.0.0.1",
        port=stack.clickhouse_port,
        user=stack.clickhouse_admin_user,
        password=stack.clickhouse_admin_password,
        database=database or stack.clickhouse_database,
    )


def pipeline_client(stack: Any, database: str) -> Client:
    """The stack's ClickHouse as the pipeline's account (no DDL), on ``database``."""
    return Client(
        host="127.0.0.1",
        port=stack.clickhouse_port,
        user=stack.clickhouse_user,
        password=stack.clickhouse_password,
        database=database,
    )


class SqlEngine(Protocol):
    name: str

    def execute(self, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def insert(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None: ...


class _Context:
    server = type("server", (), {"timezone": "UTC"})()
    client = type("client", (), {"settings": {}})()


def _as_python(clickhouse_type: str, value: Any) -> Any:
    """JSONCompact quotes 64-bit integers and dates; give them the types clickhouse-driver returns."""
    if value is None:
        return None
    if clickhouse_type.startswith(("UInt", "Int")):
        return int(value)
    if clickhouse_type.startswith("Float"):
        return float(value)
    if clickhouse_type == "Date":
        return date.fromisoformat(value)
    if clickhouse_type.startswith("DateTime"):
        return datetime.fromisoformat(value)
    if clickhouse_type.startswith("Array("):
        return [_as_python(clickhouse_type[6:-1], item) for item in value]
    return value


class ChdbEngine:
    name = "chdb (current ClickHouse)"

    def __init__(self) -> None:
        from chdb import session

        self._session = session.Session()
        self.database = f"t_{uuid.uuid4().hex[:8]}"
        self._session.query(f"CREATE DATABASE {self.database}")
        self._session.query(f"USE {self.database}")

    def execute(self, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        rendered = query % escape_params(params, _Context()) if params else query
        result = self._session.query(rendered, "JSONCompact")
        text = result.bytes().decode() if hasattr(result, "bytes") else str(result)
        if not text.strip():
            return []
        payload = json.loads(text)
        types = [column["type"] for column in payload["meta"]]
        return [tuple(_as_python(t, v) for t, v in zip(types, row, strict=True)) for row in payload["data"]]

    def insert(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        rendered = (", ".join(str(escape_param(value, _Context())) for value in row) for row in rows)
        self._session.query(f"{statement} " + ", ".join(f"({values})" for values in rendered))

    def close(self) -> None:
        self._session.close()


class ServerEngine:
    name = "ClickHouse server (local stack)"

    def __init__(self, client: Client) -> None:
        self._client = client

    def execute(self, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._client.execute(query, params)

    def insert(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        self._client.execute(statement, list(rows))


def chdb_engine() -> Iterator[ChdbEngine]:
    engine = ChdbEngine()
    try:
        yield engine
    finally:
        engine.close()
