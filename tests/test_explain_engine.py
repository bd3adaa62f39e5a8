"""`explain` tells the engine's story: for every customer of a simulated company, each promise's story
(from replayed files and from ClickHouse) and the `promise_state` view say what the engine said.

The engine's truth is read from the engine itself, not from its trace: its alignment events and the
promises left in its ledgers after the replay (state, due time, quantity fulfilled).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from streams.contract import iso_to_ms
from streams.engine import PromiseEngine, TraceRecord, alert_for
from streams.engine.ledger import BROKEN, KEPT
from streams.explain import ReplaySource, Story, read_events, read_story
from streams.report import read_scorecard
from streams.sink.rows import ALERTS, ALIGNMENT_EVENTS, rows
from streams.sink.schema import apply_schema
from tests.clickhouse_engines import SqlEngine, chdb_engine

ROOT = Path(__file__).resolve().parent.parent
ENDED = {KEPT: "KEPT", BROKEN: "BROKEN"}
FULFILMENTS = ("OrderDelivered", "OrderShipped")


@dataclass
class EngineTruth:
    """What the engine said about one promise."""

    state: str  # OPEN, KEPT or BROKEN
    reason: str | None
    late_by_s: int | None
    at_risk: bool
    #: the promise's due time in the engine's ledger (its terms now)
    due_at: int
    #: the due time its latest alignment event carried (all that ClickHouse can know)
    published_due_at: int
    #: quantity delivered or shipped that the engine counted toward it
    fulfilled: int
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Replayed:
    path: Path
    customers: list[str]
    truth: dict[str, dict[str, EngineTruth]]
    outputs: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def _engine_truth(paths: list[Path], until: int | None = None) -> Replayed:
    engine = PromiseEngine()
    outputs, alerts, customers = [], [], set()
    for event in read_events([str(path) for path in paths]):
        if event.customer_id is not None:
            customers.add(event.customer_id)
        outputs.extend(engine.process(event))
    if until is not None:
        outputs.extend(engine.advance_to(until))
    outputs.extend(engine.drain())  # as replay does at the end of its input
    truth: dict[str, dict[str, EngineTruth]] = {}
    for output in outputs:
        record = output.to_dict()
        if output.type == "PROMISE_BROKEN" or output.type == "CONTRADICTION":
            alert = alert_for(output, engine.customer_value(output.customer_id or ""))
            assert alert is not None
            alerts.append(alert.to_dict())
        if output.promise_id is None or output.customer_id is None:
            continue
        promises = truth.setdefault(output.customer_id, {})
        promise = promises.get(output.promise_id)
        if promise is None:
            promise = promises[output.promise_id] = EngineTruth("OPEN", None, None, False, 0, 0, 0)
        promise.events.append(record)
        promise.published_due_at = output.due_at or 0
        if output.type == "PROMISE_BROKEN":
            promise.reason = output.reason
        elif output.type == "FULFILLED_LATE":
            promise.late_by_s = output.delay_s
        elif output.type == "AT_RISK":
            promise.at_risk = True
    for customer_id, promises in truth.items():
        ledger = engine.ledgers[customer_id]
        for promise_id, promise in promises.items():
            held = ledger.promises[promise_id]  # nothing ended longer ago than the lookback
            promise.state = ENDED.get(held.state, "OPEN")
            promise.due_at = held.due_at
            promise.fulfilled = held.fulfilled
    return Replayed(paths[0], sorted(customers), truth, [o.to_dict() for o in outputs], alerts)


def _simulate(path: Path, customers: int, days: int, seed: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streams.cli.main", "simulate", "--to-file", str(path)]
    command += ["--customers", str(customers), "--days", str(days), "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    path = tmp_path_factory.mktemp("company") / "company.jsonl"
    _simulate(path, customers=60, days=14, seed=11)
    return _engine_truth([path])


def _said_counted(entry: dict[str, Any]) -> bool:
    """The story says this delivery or shipment counted toward the promise (on time, late or surplus)."""
    detail = entry["detail"]
    return "; counted" in detail or "; came late" in detail


def _counted_in_story(promise: dict[str, Any]) -> int:
    return sum(
        entry["record"]["quantity"]
        for entry in promise["timeline"]
        if entry["origin"] == "input" and entry["record"]["type"] in FULFILMENTS and _said_counted(entry)
    )


def _check_against_engine(story: Story, truth: dict[str, EngineTruth], *, published: bool) -> list[str]:
    """Every disagreement between a story and the engine, in words (empty: they agree)."""
    told = story.to_dict()
    problems = []
    promises = {p["promise_id"]: p for p in told["promises"]}
    if set(promises) != set(truth):
        problems.append(f"{story.customer_id}: promises {sorted(promises)} != engine {sorted(truth)}")
    for promise_id, engine in truth.items():
        promise = promises.get(promise_id)
        if promise is None:
            continue
        status = "OPEN" if promise["status"] == "AT_RISK" else promise["status"]
        due = engine.published_due_at if published else engine.due_at
        checks = {
            "state": (status, engine.state),
            "at risk": (promise["status"] == "AT_RISK", engine.state == "OPEN" and engine.at_risk),
            "reason": (promise["reason"], engine.reason),
            "late by": (promise["late_by_s"], engine.late_by_s),
            "due": (promise["due_at"], due),
        }
        if not published and promise["kind"] in ("DELIVERY", "SHIPPING"):
            checks["counted"] = (_counted_in_story(promise), engine.fulfilled)
        for name, (got, expected) in checks.items():
            if got != expected:
                problems.append(f"{promise_id}: {name} {got!r} in the story, engine {expected!r}")
    return problems


def test_the_trace_only_observes(company: Replayed) -> None:
    """A traced replay emits exactly what an untraced one does, and each record is what it says."""
    records: list[TraceRecord] = []
    engine = PromiseEngine(trace=records.append)
    traced = [o.to_dict() for event in read_events([str(company.path)]) for o in engine.process(event)]
    traced += [o.to_dict() for o in engine.drain()]
    assert traced == company.outputs
    counted = {(r.customer_id, r.promise_id): r.fulfilled for r in records if r.effect == "COUNTED"}
    assert counted and all(company.truth[c][p].fulfilled == n for (c, p), n in counted.items())
    with pytest.raises(AttributeError):
        records[0].effect = "KEPT"  # type: ignore[misc]


def test_the_replayed_story_of_every_customer_is_the_engines(company: Replayed) -> None:
    source = ReplaySource([str(company.path)])
    problems, promises, counted = [], 0, 0
    for customer_id in company.customers:
        story = source.story(customer_id)
        assert story is not None, customer_id
        truth = company.truth.get(customer_id, {})
        problems += _check_against_engine(story, truth, published=False)
        promises += len(truth)
        counted += sum(1 for t in truth.values() if t.fulfilled)
    assert problems == []
    assert len(company.customers) == 60 and promises > 150 and counted > 100  # the check had material


def test_the_clickhouse_story_and_promise_state_of_every_customer_are_the_engines(company: Replayed) -> None:
    for engine in chdb_engine():
        _load(engine, company)
        problems = []
        for customer_id in company.customers:
            truth = company.truth.get(customer_id, {})
            story = read_story(engine, customer_id)
            if story is None:
                assert truth == {}, customer_id
                continue
            problems += _check_against_engine(story, truth, published=True)
        problems += _promise_state_problems(engine, company)
        assert problems == []


def test_the_scorecard_counts_each_promise_at_risk_once(company: Replayed) -> None:
    at_risk: dict[str, set[str]] = {}
    days: dict[str, set[int]] = {}
    for output in company.outputs:
        if output["type"] == "AT_RISK":
            at_risk.setdefault(output["department"], set()).add(output["promise_id"])
            days.setdefault(output["promise_id"], set()).add(output["at"] // 86_400_000)
    assert any(len(d) > 1 for d in days.values())  # some promises are at risk on several days
    for engine in chdb_engine():
        _load(engine, company)
        scorecard = {row.department: row.at_risk for row in read_scorecard(engine, date(2026, 1, 1))}
        assert {d: n for d, n in scorecard.items() if n} == {d: len(p) for d, p in at_risk.items()}


def _load(engine: SqlEngine, replayed: Replayed) -> None:
    apply_schema(engine)
    for _ in range(2):  # a redelivered batch changes nothing
        engine.insert(ALIGNMENT_EVENTS.insert_statement, rows(ALIGNMENT_EVENTS, replayed.outputs))
        engine.insert(ALERTS.insert_statement, rows(ALERTS, replayed.alerts))


def _promise_state_problems(engine: SqlEngine, replayed: Replayed) -> list[str]:
    state = {
        row[0]: row[1:]
        for row in engine.execute(
            "SELECT promise_id, status, broken_reason, due_at_ms, late_by_s FROM promise_state"
        )
    }
    truth = {pid: t for promises in replayed.truth.values() for pid, t in promises.items()}
    problems = [] if set(state) == set(truth) else [f"promise_state holds {len(state)}, engine {len(truth)}"]
    for promise_id, engine_said in truth.items():
        status = "AT_RISK" if engine_said.state == "OPEN" and engine_said.at_risk else engine_said.state
        expected = (
            status,
            engine_said.reason or "",
            engine_said.published_due_at,
            engine_said.late_by_s or 0,
        )
        if state.get(promise_id) != expected:
            problems.append(f"promise_state {promise_id}: {state.get(promise_id)} != engine {expected}")
    return problems


# --------------------------------------------------------------------------------------------------
# the examples, small enough to read


def _line(**fields: Any) -> str:
    return json.dumps({"source": "test", **fields})


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


COMMITMENT = _line(
    type="CommitmentMade", event_id="k-1", customer_id="c-1", occurred_at="2026-03-01T09:00:00Z",
    commitment_id="k-early", deal_id="d-1", product="p", quantity=5, deliver_by="2026-03-05T00:00:00Z",
    features=[],
)  # fmt: skip
DELIVERY = _line(
    type="OrderDelivered", event_id="dl-1", customer_id="c-1", occurred_at="2026-03-01T10:00:00Z",
    order_id="o-1", deal_id="d-1", product="p", quantity=5, features=[],
)  # fmt: skip
UNTIL = iso_to_ms("2026-03-10T00:00:00Z")


@pytest.mark.parametrize(
    "order", [("delivery", "commitment"), ("commitment", "delivery")], ids=lambda o: " before ".join(o)
)
def test_a_delivery_is_said_counted_only_when_the_engine_counted_it(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    lines = {"delivery": DELIVERY, "commitment": COMMITMENT}
    path = _write(tmp_path / "events.jsonl", *(lines[name] for name in order))
    truth = _engine_truth([path], until=UNTIL).truth["c-1"]["k-early"]
    story = ReplaySource([str(path)], until=UNTIL).story("k-early")
    assert story is not None
    (promise,) = story.to_dict()["promises"]
    (delivery,) = [
        entry
        for entry in [*promise["timeline"], *(e.to_dict() for e in story.other)]
        if entry["record"].get("event_id") == "dl-1"
    ]
    assert _said_counted(delivery) == (truth.fulfilled == 5)
    assert (promise["status"], promise["reason"]) == (truth.state, truth.reason)
    if truth.state == "BROKEN":  # nothing delivered: the delivery must not read as counted
        assert truth.reason == "NOT_DELIVERED" and "not counted toward any promise" in delivery["detail"]
    if order == ("commitment", "delivery"):
        assert truth.state == "KEPT" and "counted, on time (5 of 5 so far)" in delivery["detail"]


AMENDED_EARLIER = _line(
    type="CommitmentAmended", event_id="am-1", customer_id="c-1", occurred_at="2026-03-02T09:00:00Z",
    commitment_id="k-early", deliver_by="2026-03-03T00:00:00Z", customer_informed=True,
)  # fmt: skip
LATE_DELIVERY = _line(
    type="OrderDelivered", event_id="dl-2", customer_id="c-1", occurred_at="2026-03-04T00:00:00Z",
    order_id="o-1", deal_id="d-1", product="p", quantity=5, features=[],
)  # fmt: skip


def test_an_informed_amendment_moves_the_due_time_for_the_story_and_promise_state(tmp_path: Path) -> None:
    """Amended to an earlier date, broken at it, delivered after: every source says the amended date."""
    path = _write(tmp_path / "events.jsonl", COMMITMENT, AMENDED_EARLIER, LATE_DELIVERY)
    replayed = _engine_truth([path], until=UNTIL)
    truth = replayed.truth["c-1"]["k-early"]
    amended = iso_to_ms("2026-03-03T00:00:00Z")
    assert (truth.state, truth.reason, truth.due_at, truth.published_due_at) == (
        "BROKEN", "NOT_DELIVERED", amended, amended
    )  # fmt: skip
    story = ReplaySource([str(path)], until=UNTIL).story("c-1")
    assert story is not None
    (promise,) = story.promises
    assert promise.due_at == amended and promise.late_by_s == 86_400
    (amendment,) = [e for e in promise.timeline if e.what == "amended"]
    assert "due 2026-03-05 00:00 UTC → 2026-03-03 00:00 UTC" in amendment.detail
    (delivery,) = [e for e in promise.timeline if e.record.get("event_id") == "dl-2"]
    assert delivery.what == "delivered late" and "came late, 1d after the due time" in delivery.detail
    for engine in chdb_engine():
        _load(engine, replayed)
        stored = read_story(engine, "k-early")
        assert stored is not None and stored.promises[0].due_at == amended
        assert engine.execute("SELECT due_at_ms FROM promise_state") == [(amended,)]
