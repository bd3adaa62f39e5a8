"""`promise-ledger explain`: a customer's story, from replayed files and from ClickHouse, tells one story.

The fixture story (tests/fixtures/explain/story.jsonl): rep Ana Ruiz commits 20 widgets with SSO by
03-10; the commitment is amended to 12 by 03-14 without telling the customer; 12 arrive on time, the
promise breaks SHORT at 03-10, the customer complains (traced to sales), the last 8 arrive late.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.codec import default_codec, write_container
from streams.contract import decode_json_line
from streams.engine import PromiseEngine, alert_for
from streams.explain import ReplaySource, read_events, read_story
from streams.sink.batch import TableSink
from streams.sink.rows import ALERTS, ALIGNMENT_EVENTS, rows
from streams.sink.schema import apply_schema
from streams.slack import AlertGroup, render
from streams.slack.receiver import as_slack_shows_it
from tests.clickhouse_engines import admin_client, chdb_engine, pipeline_client

ROOT = Path(__file__).resolve().parent.parent
STORY = ROOT / "tests" / "fixtures" / "explain" / "story.jsonl"
HOUR_S = 3_600


def explain(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streams.cli.main", "explain", *map(str, args)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "220", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=environment, check=False, timeout=120)


def explained(*args: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = explain(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _promise(story: dict[str, Any], promise_id: str) -> dict[str, Any]:
    (promise,) = [p for p in story["promises"] if p["promise_id"] == promise_id]
    return promise


def _entries(promise: dict[str, Any], what: str) -> list[dict[str, Any]]:
    return [entry for entry in promise["timeline"] if entry["what"] == what]


def _replayed_outputs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every alignment event and alert of the fixture, as the worker would publish them."""
    engine = PromiseEngine()
    events, alerts = [], []

    def publish(outputs: list[Any]) -> None:
        for output in outputs:
            events.append(output.to_dict())
            alert = alert_for(output, engine.customer_value(output.customer_id or ""))
            if alert is not None:
                alerts.append(alert.to_dict())

    for event in read_events([str(STORY)]):
        publish(engine.process(event))
    publish(engine.drain())
    return events, alerts


# --------------------------------------------------------------------------------------------------
# replayed files


def test_replay_tells_every_fact_of_the_story() -> None:
    story = explained("c-story", "--from", STORY)
    assert story["customer_id"] == "c-story" and story["source"] == "replay"
    commitment = _promise(story, "k-story")
    assert (commitment["department"], commitment["kind"]) == ("SALES", "DELIVERY")
    assert commitment["terms"]["quantity"] == 20 and commitment["terms"]["features"] == ["SSO"]
    assert commitment["terms"]["rep_name"] == "Ana Ruiz"

    (approval,) = _entries(commitment, "approved")
    assert approval["record"]["approver"] == "Dev Patel"
    (amendment,) = _entries(commitment, "amended")
    assert amendment["record"]["customer_informed"] is False
    assert amendment["record"]["quantity"] == 12
    assert "NOT informed" in amendment["detail"]
    risks = [entry["record"]["reason"] for entry in _entries(commitment, "at risk")]
    assert risks == ["UNINFORMED_CHANGE", "DEADLINE_NEAR"]

    (counted,) = _entries(commitment, "delivered")
    assert counted["record"]["quantity"] == 12 and "counted, on time" in counted["detail"]
    (late_delivery,) = _entries(commitment, "delivered late")
    assert late_delivery["record"]["quantity"] == 8
    (late,) = _entries(commitment, "came late")
    assert late["record"]["delay_s"] == 56 * HOUR_S  # 03-12T08:00 against the original 03-10T00:00

    assert (commitment["status"], commitment["reason"]) == ("BROKEN", "SHORT")
    (alert,) = _entries(commitment, "alert")
    assert alert["record"]["group_key"] == "rep:Ana Ruiz"
    assert commitment["complaints"] == ["t-story"]

    (complaint,) = story["complaints"]
    assert complaint["root_department"] == "SALES"
    assert complaint["promise_ids"] == ["k-story"]
    assert complaint["text"] == "Only 12 of the 20 widgets arrived."
    assert [entry["what"] for entry in complaint["timeline"]] == [
        "ticket", "complaint", "reply", "style", "tone", "resolved", "rated", "recovered",
    ]  # fmt: skip
    assert story["alerts"] == 1


def test_the_timeline_is_in_time_order_and_holds_only_this_customer() -> None:
    story = explained("c-story", "--from", STORY)
    assert [p["promise_id"] for p in story["promises"]] == ["k-story", "t-story:first-reply"]
    for promise in story["promises"]:
        times = [entry["at"] for entry in promise["timeline"]]
        assert times == sorted(times)
    records = [e["record"] for p in story["promises"] for e in p["timeline"]]
    assert all(record.get("customer_id") in ("c-story", None) for record in records)
    assert "k-other" not in json.dumps(story)


def test_rich_timeline_shows_the_story_in_words() -> None:
    result = explain("c-story", "--from", STORY)
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    for fact in (
        "promise k-story",
        "SALES · DELIVERY",
        "BROKEN (SHORT)",
        "20 × widget with SSO",
        "customer NOT informed",
        "UNINFORMED_CHANGE",
        "signed off by Dev Patel",
        "counted, on time",
        "came late, 2d 8h after the due time",
        "alert raised: MEDIUM",
        "complaint t-story",
        "root department SALES",
    ):
        assert fact in shown, fact


@pytest.mark.parametrize("subject", ["k-story", "t-story", "t-story:first-reply"])
def test_a_promise_or_ticket_id_explains_its_customer(subject: str) -> None:
    story = explained(subject, "--from", STORY)
    assert story["customer_id"] == "c-story"
    assert story["subject"] == subject


def test_the_id_in_a_slack_alert_explains_the_promise() -> None:
    _, alerts = _replayed_outputs()
    (alert,) = alerts
    shown = as_slack_shows_it(render(AlertGroup(alert["group_key"], [alert])))
    (subject,) = re.findall(r"`promise-ledger explain ([^`]+)`", shown)
    story = explained(subject, "--from", STORY)
    assert story["customer_id"] == alert["customer_id"] == "c-story"
    assert _promise(story, subject)["status"] == "BROKEN"


def test_an_avro_container_tells_the_same_story(tmp_path: Path) -> None:
    container = tmp_path / "story.avro"
    with open(STORY, "rb") as lines, open(container, "wb") as out:
        write_container(out, [decode_json_line(line) for line in lines if line.strip()], default_codec())
    assert explained("k-story", "--from", container) == explained("k-story", "--from", STORY)


def test_an_unknown_id_is_one_line_and_exit_1() -> None:
    result = explain("nobody", "--from", STORY)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "nobody" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_line_in_the_files_is_named_not_half_told(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(STORY.read_text() + '{"type":"Gossip","event_id":"x"}\n')
    result = explain("c-story", "--from", broken)
    assert result.returncode == 3
    assert f"{broken}:14:" in result.stderr and "Gossip" in result.stderr


# --------------------------------------------------------------------------------------------------
# ClickHouse: the same ledger facts as the replay


def _ledger_view(story: dict[str, Any]) -> dict[str, Any]:
    """What both sources know: each promise's outcome and its ledger and alert entries; the complaints."""
    return {
        "promises": {
            p["promise_id"]: (
                p["department"],
                p["kind"],
                p["status"],
                p["reason"],
                p["due_at"],
                [(e["at"], e["what"], e["detail"]) for e in p["timeline"] if e["origin"] != "input"],
            )
            for p in story["promises"]
        },
        "complaints": [
            (
                c["ticket_id"],
                c["root_department"],
                c["promise_ids"],
                [(e["at"], e["what"], e["detail"]) for e in c["timeline"] if e["origin"] != "input"],
            )
            for c in story["complaints"]
        ],
        "alerts": story["alerts"],
    }


def test_chdb_tells_the_same_ledger_as_the_replay() -> None:
    events, alerts = _replayed_outputs()
    replayed = ReplaySource([str(STORY)]).story("c-story")
    assert replayed is not None
    for engine in chdb_engine():
        apply_schema(engine)
        for _ in range(2):  # a redelivered batch counts once
            engine.insert(ALIGNMENT_EVENTS.insert_statement, rows(ALIGNMENT_EVENTS, events))
            engine.insert(ALERTS.insert_statement, rows(ALERTS, alerts))
        for subject in ("c-story", "k-story", "t-story", "t-story:first-reply"):
            stored = read_story(engine, subject)
            assert stored is not None and stored.customer_id == "c-story"
            assert _ledger_view(stored.to_dict()) == _ledger_view(replayed.to_dict())
        assert read_story(engine, "nobody") is None


@pytest.fixture
def loaded_database(stack: Any, scratch_database: str) -> Iterator[str]:
    apply_schema(admin_client(stack, scratch_database))
    client = pipeline_client(stack, scratch_database)
    events, alerts = _replayed_outputs()
    for _ in range(2):  # a redelivered batch counts once
        for layout, records in ((ALIGNMENT_EVENTS, events), (ALERTS, alerts)):
            sink = TableSink(client, layout)
            for record in records:
                sink.add(record)
            sink.flush()
    client.disconnect()
    yield scratch_database


@pytest.mark.stack
def test_clickhouse_on_the_stack_tells_the_same_ledger(loaded_database: str) -> None:
    env = {"PL_CLICKHOUSE_DATABASE": loaded_database}
    replayed = explained("c-story", "--from", STORY)
    for subject in ("c-story", "k-story", "t-story"):
        stored = explained(subject, env=env)
        assert stored["source"] == "clickhouse" and stored["customer_id"] == "c-story"
        assert _ledger_view(stored) == _ledger_view(replayed)
    shown = explain("k-story", env=env).stdout
    for fact in ("UNINFORMED_CHANGE", "BROKEN (SHORT)", "fulfilled late, 2d 8h", "root department SALES"):
        assert fact in shown, fact
    unknown = explain("nobody", env=env)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr and unknown.stdout == ""
