"""The ClickHouse schema and the scorecard read the same on ClickHouse 18.16 and on current ClickHouse,
and a redelivered batch never double counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from streams.report import read_scorecard
from streams.sink.rows import ALERTS, ALIGNMENT_EVENTS, SINK_DEAD_LETTERS, rows
from streams.sink.schema import MIGRATIONS, apply_schema
from tests.clickhouse_engines import SqlEngine, chdb_engine


def _ms(day: int, hour: int = 12) -> int:
    return int(datetime(2026, 3, day, hour, tzinfo=UTC).timestamp() * 1000)


def _event(alignment_id: str, type_: str, day: int, **fields: Any) -> dict[str, Any]:
    return {"alignment_id": alignment_id, "type": type_, "customer_id": "c-1", "at": _ms(day), **fields}


SALES_DELIVERY = {"department": "SALES", "kind": "DELIVERY", "rep_name": "Dana"}
MARKETING = {"department": "MARKETING", "kind": "SHIPPING", "campaign_id": "spring"}
SERVICE_CALLBACK = {"department": "SERVICE", "kind": "CALLBACK"}

STORY = [
    _event("a1", "PROMISE_OPENED", 1, promise_id="p1", due_at=_ms(3), **SALES_DELIVERY),
    _event("a2", "PROMISE_OPENED", 1, promise_id="p2", due_at=_ms(2), **SALES_DELIVERY),
    _event("a3", "PROMISE_OPENED", 1, promise_id="p3", due_at=_ms(2), **MARKETING),
    _event("a4", "AT_RISK", 2, promise_id="p1", reason="UNINFORMED_CHANGE", **SALES_DELIVERY),
    _event("a5", "AT_RISK", 2, promise_id="p1", reason="DEADLINE_NEAR", **SALES_DELIVERY),
    _event("a6", "PROMISE_KEPT", 2, promise_id="p2", **SALES_DELIVERY),
    _event("a7", "PROMISE_BROKEN", 2, promise_id="p3", reason="NOT_SHIPPED", severity="HIGH", **MARKETING),
    _event("a8", "PROMISE_OPENED", 2, promise_id="p4", **SERVICE_CALLBACK),
    _event("a9", "PROMISE_KEPT", 2, promise_id="p4", **SERVICE_CALLBACK),
    _event("a10", "PROMISE_BROKEN", 3, promise_id="p1", reason="SHORT", severity="MEDIUM", **SALES_DELIVERY),
    _event("a11", "FULFILLED_LATE", 4, promise_id="p1", delay_s=86_400, **SALES_DELIVERY),
    _event("a12", "COMPLAINT_ATTRIBUTED", 3, ticket_id="t1", root_department="SALES", promise_ids=["p1"]),
    _event("a13", "COMPLAINT_ATTRIBUTED", 3, ticket_id="t2", root_department="UNATTRIBUTED"),
    _event("a14", "TONE", 3, ticket_id="t1", department="SERVICE", agent_name="Ann", phrases=["our policy"]),
]

ALERT = {
    "alert_id": "a7",
    "dedup_key": "p3",
    "group_key": "stockout:lamp",
    "severity": "HIGH",
    "type": "PROMISE_BROKEN",
    "customer_id": "c-1",
    "promise_id": "p3",
    "at": _ms(2),
    "customer_value": 120.5,
}


def _load_story_twice(engine: SqlEngine) -> None:
    for _ in range(2):  # a redelivered batch
        engine.insert(ALIGNMENT_EVENTS.insert_statement, rows(ALIGNMENT_EVENTS, STORY))
        engine.insert(ALERTS.insert_statement, rows(ALERTS, [ALERT]))


@pytest.fixture(params=["chdb", "server"])
def engine(request: pytest.FixtureRequest) -> Iterator[SqlEngine]:
    if request.param == "chdb":
        yield from chdb_engine()
    else:
        yield request.getfixturevalue("clickhouse_scratch")


def test_every_statement_applies_twice(engine: SqlEngine) -> None:
    apply_schema(engine)
    apply_schema(engine)  # idempotent at every start
    tables = {row[0] for row in engine.execute("SHOW TABLES")}
    assert {
        "alignment_events",
        "alerts",
        "dead_letters",
        "sink_dead_letters",
        "promise_state",
        "scorecard_daily",
    } <= tables
    assert len(MIGRATIONS) == 7


def test_a_database_made_by_an_earlier_version_reads_with_todays_views(engine: SqlEngine) -> None:
    apply_schema(engine)
    engine.execute("DROP TABLE scorecard_daily")
    engine.execute("DROP TABLE promise_state")
    engine.execute("CREATE VIEW promise_state AS SELECT 1 AS outdated")
    apply_schema(engine)
    columns = {row[0] for row in engine.execute("DESCRIBE TABLE promise_state")}
    assert "outdated" not in columns and "due_at_ms" in columns
    assert "scorecard_daily" in {row[0] for row in engine.execute("SHOW TABLES")}


def test_a_row_set_aside_twice_reads_once_with_its_record(engine: SqlEngine) -> None:
    apply_schema(engine)
    value = b"\x00\x00\x00\x00\x12\xffnot utf-8"
    refused = {
        "source_topic": "alignment.events",
        "source_partition": 3,
        "source_offset": 2**40,
        "target_table": "alignment_events",
        "reason": "unstorable_value",
        "error": "at_ms: -1 is outside [0, 4294967295999]",
        "value_hex": value.hex(),
        "refused_at": _ms(5),
    }
    for _ in range(2):  # the same batch again after a crash before the commit
        engine.insert(SINK_DEAD_LETTERS.insert_statement, rows(SINK_DEAD_LETTERS, [refused]))
    assert engine.execute(
        "SELECT source_topic, source_partition, source_offset, reason, lower(hex(unhex(value_hex))), "
        "toDate(refused_at) FROM sink_dead_letters FINAL"
    ) == [("alignment.events", 3, 2**40, "unstorable_value", value.hex(), date(2026, 3, 5))]


def test_scorecard_counts_a_redelivered_batch_once(engine: SqlEngine) -> None:
    apply_schema(engine)
    _load_story_twice(engine)
    got = {
        (row[0], row[1]): row[2:]
        for row in engine.execute(
            "SELECT day, department, made, kept, broken, kept_rate, at_risk, complaints_caused, tone_issues "
            "FROM scorecard_daily ORDER BY day, department"
        )
    }
    day = {n: date(2026, 3, n) for n in (1, 2, 3, 4)}
    assert got[(day[1], "SALES")] == (2, 0, 0, 0, 0, 0, 0)
    assert got[(day[1], "MARKETING")] == (1, 0, 0, 0, 0, 0, 0)
    assert got[(day[2], "SALES")] == (0, 1, 0, 1, 1, 0, 0)
    assert got[(day[2], "MARKETING")] == (0, 0, 1, 0, 0, 0, 0)
    assert got[(day[2], "SERVICE")] == (1, 1, 0, 1, 0, 0, 0)
    assert got[(day[3], "SALES")] == (0, 0, 1, 0, 0, 1, 0)
    assert got[(day[3], "UNATTRIBUTED")] == (0, 0, 0, 0, 0, 1, 0)
    assert got[(day[3], "SERVICE")] == (0, 0, 0, 0, 0, 0, 1)
    assert engine.execute("SELECT count() FROM alerts FINAL") == [(1,)]


def test_drilldown_by_rep_and_campaign(engine: SqlEngine) -> None:
    apply_schema(engine)
    _load_story_twice(engine)
    by_rep = engine.execute(
        "SELECT rep_name, sum(made), sum(kept), sum(broken) FROM scorecard_drilldown "
        "WHERE rep_name != '' GROUP BY rep_name"
    )
    by_campaign = engine.execute(
        "SELECT campaign_id, sum(made), sum(broken) FROM scorecard_drilldown "
        "WHERE campaign_id != '' GROUP BY campaign_id"
    )
    assert by_rep == [("Dana", 2, 1, 1)]
    assert by_campaign == [("spring", 1, 1)]


def test_promise_state_is_one_row_per_promise(engine: SqlEngine) -> None:
    apply_schema(engine)
    _load_story_twice(engine)
    state = {
        row[0]: row[1:]
        for row in engine.execute(
            "SELECT promise_id, status, broken_reason, arraySort(risk_reasons), late_by_s "
            "FROM promise_state ORDER BY promise_id"
        )
    }
    assert state == {
        "p1": ("BROKEN", "SHORT", ["DEADLINE_NEAR", "UNINFORMED_CHANGE"], 86_400),
        "p2": ("KEPT", "", [], 0),
        "p3": ("BROKEN", "NOT_SHIPPED", [], 0),
        "p4": ("KEPT", "", [], 0),
    }


def test_a_promise_at_risk_counts_once_on_the_day_it_first_was(engine: SqlEngine) -> None:
    apply_schema(engine)
    risky = [
        _event("r1", "PROMISE_OPENED", 1, promise_id="q1", due_at=_ms(5), **SALES_DELIVERY),
        _event("r2", "AT_RISK", 2, promise_id="q1", reason="UNAPPROVED", due_at=_ms(5), **SALES_DELIVERY),
        _event("r3", "AT_RISK", 3, promise_id="q1", reason="DEADLINE_NEAR", due_at=_ms(5), **SALES_DELIVERY),
        _event("r4", "PROMISE_BROKEN", 5, promise_id="q1", reason="NOT_DELIVERED", **SALES_DELIVERY),
        _event("r5", "PROMISE_OPENED", 1, promise_id="q2", due_at=_ms(4), **SALES_DELIVERY),
        _event("r6", "AT_RISK", 3, promise_id="q2", reason="DEADLINE_NEAR", due_at=_ms(4), **SALES_DELIVERY),
        _event(
            "r7", "AT_RISK", 3, promise_id="q2", reason="UNINFORMED_CHANGE", due_at=_ms(4), **SALES_DELIVERY
        ),
    ]
    for _ in range(2):  # a redelivered batch
        engine.insert(ALIGNMENT_EVENTS.insert_statement, rows(ALIGNMENT_EVENTS, risky))
    daily = engine.execute("SELECT day, at_risk FROM scorecard_daily WHERE at_risk > 0 ORDER BY day")
    assert daily == [(date(2026, 3, 2), 1), (date(2026, 3, 3), 1)]  # q1 on day 2, q2 on day 3
    (sales,) = read_scorecard(engine, date(2026, 3, 1))
    assert (sales.made, sales.at_risk) == (2, 2)  # two promises at risk, not three promise-days
    assert [row.at_risk for row in read_scorecard(engine, date(2026, 3, 3))] == [1]
    by_rep = engine.execute("SELECT rep_name, sum(at_risk) FROM scorecard_drilldown GROUP BY rep_name")
    assert by_rep == [("Dana", 2)]


def test_promise_state_due_time_is_the_latest_events(engine: SqlEngine) -> None:
    """An informed amendment moved the due time earlier: the events after it carry the new one."""
    apply_schema(engine)
    amended = [
        _event("m1", "PROMISE_OPENED", 1, promise_id="q1", due_at=_ms(5), **SALES_DELIVERY),
        _event("m2", "AT_RISK", 2, promise_id="q1", reason="DEADLINE_NEAR", due_at=_ms(3), **SALES_DELIVERY),
        _event("m3", "PROMISE_BROKEN", 3, promise_id="q1", reason="SHORT", due_at=_ms(3), **SALES_DELIVERY),
        _event("m4", "FULFILLED_LATE", 4, promise_id="q1", delay_s=86_400, due_at=_ms(3), **SALES_DELIVERY),
    ]
    engine.insert(ALIGNMENT_EVENTS.insert_statement, rows(ALIGNMENT_EVENTS, amended))
    assert engine.execute("SELECT status, due_at_ms, late_by_s FROM promise_state") == [
        ("BROKEN", _ms(3), 86_400)
    ]


def test_report_query_reads_the_scorecard_by_department(engine: SqlEngine) -> None:
    apply_schema(engine)
    _load_story_twice(engine)
    rows = {row.department: row for row in read_scorecard(engine, date(2026, 3, 1))}
    assert set(rows) == {"MARKETING", "SALES", "SERVICE", "UNATTRIBUTED"}
    sales = rows["SALES"]
    assert (sales.made, sales.kept, sales.broken, sales.at_risk, sales.complaints_caused) == (2, 1, 1, 1, 1)
    assert sales.kept_rate == 0.5
    assert rows["SERVICE"].kept_rate == 1.0
    assert rows["UNATTRIBUTED"].kept_rate is None
    only_sales = read_scorecard(engine, date(2026, 3, 3), "SALES")
    assert [(r.department, r.made, r.broken) for r in only_sales] == [("SALES", 0, 1)]


@pytest.mark.stack
def test_report_command_prints_the_scorecard_as_json(clickhouse_scratch: SqlEngine, stack: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    apply_schema(clickhouse_scratch)
    _load_story_twice(clickhouse_scratch)
    database = clickhouse_scratch.execute("SELECT currentDatabase()")[0][0]
    env = {**os.environ, **stack.exports(), "PL_CLICKHOUSE_DATABASE": database}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "report", "--since", "2026-03-01", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    by_department = {row["department"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert by_department["SALES"]["kept_rate"] == 0.5
    assert by_department["MARKETING"]["broken"] == 1
    table = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "report", "--since", "2026-03-01"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SALES" in table and "50%" in table
