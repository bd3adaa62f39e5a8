"""The Faust worker on the real broker: the walking skeleton, dead letters, the idle clock."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streams import codec
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC, DEAD_LETTER_TOPIC
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import broken_commitment_story

pytestmark = pytest.mark.stack

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


def _now_ms() -> int:
    return int(time.time() * 1000)


def _commitment(customer: str, at: int, deliver_by: int, event_id: str = "e-commit") -> dict[str, Any]:
    return {
        "type": "CommitmentMade",
        "event_id": f"{customer}-{event_id}",
        "customer_id": customer,
        "occurred_at": at,
        "source": "salesforce",
        "commitment_id": f"{customer}-commitment",
        "deal_id": f"{customer}-deal",
        "rep_name": "Dana",
        "product": "lamp",
        "quantity": 20,
        "deliver_by": deliver_by,
        "unit_price": 49.0,
        "features": ["SSO"],
    }


def _types(records: list[dict[str, Any]], customer: str) -> list[str]:
    return [r["type"] for r in records if r["customer_id"] == customer]


def test_walking_skeleton_a_passed_deadline_breaks_and_lands_on_kafka_and_clickhouse(
    pipeline, stack, scratch_database
) -> None:
    pipeline.start_worker()
    pipeline.start(
        "sink",
        "sink",
        "--batch-wait",
        "0.2",
        "--metrics-port",
        "0",
        env={"PL_CLICKHOUSE_DATABASE": scratch_database},
    )
    start = _now_ms() - 10 * 24 * HOUR_MS
    customer = "skeleton-1"
    # the commitment is due a day after it was made; the ticket, three days later, moves the clock past it
    pipeline.publish(broken_commitment_story(customer, start))

    events = pipeline.read(
        ALIGNMENT_TOPIC,
        lambda r: codec.decode_alignment(r.value),
        until=lambda got: "COMPLAINT_ATTRIBUTED" in _types(got, customer),
    )
    types = _types(events, customer)
    assert types[0] == "PROMISE_OPENED"
    assert events[0]["promise_id"] == f"{customer}-commitment"
    # The idle clock releases the (historical) ticket and breaks its first reply too: only the
    # commitment's break is this story's.
    broken = [e for e in events if e["type"] == "PROMISE_BROKEN" and e["kind"] == "DELIVERY"]
    assert len(broken) == 1
    assert broken[0]["promise_id"] == f"{customer}-commitment"
    assert broken[0]["reason"] == "NOT_DELIVERED"
    assert broken[0]["at"] == start + 24 * HOUR_MS  # the due time, not when the clock passed it
    assert types.index("PROMISE_BROKEN") < types.index("COMPLAINT_ATTRIBUTED")
    complaint = next(e for e in events if e["type"] == "COMPLAINT_ATTRIBUTED")
    assert complaint["promise_ids"] == [f"{customer}-commitment"]
    assert complaint["root_department"] == "SALES"

    client = pipeline_client(stack, scratch_database)
    deadline = time.monotonic() + 60
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        try:
            rows = client.execute(
                "SELECT type, promise_id, reason FROM alignment_events FINAL "
                "WHERE customer_id = %(customer)s AND type = 'PROMISE_BROKEN'",
                {"customer": customer},
            )
        except Exception:  # the sink creates the tables when it starts
            rows = []
        if rows:
            break
        time.sleep(0.5)
    assert rows == [("PROMISE_BROKEN", f"{customer}-commitment", "NOT_DELIVERED")]


def test_records_that_are_not_events_go_to_the_dead_letter_topic_and_the_worker_goes_on(pipeline) -> None:
    worker = pipeline.start_worker()
    publisher = pipeline.publisher()
    unknown_schema = b"\x00\x00\x00\xff\xff" + b"\x02ab"
    publisher.send_raw("sales.events", b"definitely not avro", key=b"cust-x")
    publisher.send_raw("service.events", unknown_schema, key=b"cust-y")
    publisher.flush()
    publisher.close()
    customer = "after-bad-input"
    start = _now_ms() - 5 * 24 * HOUR_MS
    pipeline.publish([_commitment(customer, start, start + 24 * HOUR_MS)])

    dead = pipeline.read(
        DEAD_LETTER_TOPIC, lambda r: codec.decode_dead_letter(r.value), until=lambda got: len(got) >= 2
    )
    by_reason = {d["reason"]: d for d in dead}
    assert set(by_reason) == {"not_avro", "unknown_schema_id"}
    assert by_reason["not_avro"]["value"] == b"definitely not avro"
    assert by_reason["not_avro"]["key"] == b"cust-x"
    assert by_reason["not_avro"]["topic"] == "sales.events"
    assert by_reason["not_avro"]["offset"] == 0
    assert by_reason["unknown_schema_id"]["value"] == unknown_schema
    assert by_reason["unknown_schema_id"]["topic"] == "service.events"

    opened = pipeline.read(
        ALIGNMENT_TOPIC,
        lambda r: codec.decode_alignment(r.value),
        until=lambda got: "PROMISE_OPENED" in _types(got, customer),
    )
    assert "PROMISE_OPENED" in _types(opened, customer)
    assert worker.poll() is None, pipeline.log_of("worker")


def test_an_idle_stream_still_breaks_a_promise_soon_after_due_plus_grace(pipeline) -> None:
    pipeline.start_worker(PL_ENGINE_CONFIG="")
    customer = "idle-1"
    now = _now_ms()
    grace_ms = 5 * MINUTE_MS
    due = now - grace_ms + 3_000  # due + grace is 3 s from now; nothing else will be published
    pipeline.publish([_commitment(customer, now - HOUR_MS, due)])
    alerts = pipeline.read(
        ALERTS_TOPIC,
        lambda r: (time.time(), codec.decode_alert(r.value)),
        until=lambda got: any(a["customer_id"] == customer for _, a in got),
        timeout_s=60,
    )
    received_at, alert = next((t, a) for t, a in alerts if a["customer_id"] == customer)
    assert alert["dedup_key"] == f"{customer}-commitment"
    assert alert["type"] == "PROMISE_BROKEN"
    assert alert["due_at"] == due
    lateness_s = received_at - (due + grace_ms) / 1000
    assert lateness_s < 10, f"alert arrived {lateness_s:.1f}s after due + grace"


def test_simulate_to_kafka_publishes_a_company_the_worker_correlates(pipeline) -> None:
    import subprocess
    import sys

    worker = pipeline.start_worker()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "simulate",
            "--to-kafka",
            "--customers",
            "5",
            "--days",
            "3",
        ],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "published" in done.stderr
    opened = pipeline.read(
        ALIGNMENT_TOPIC,
        lambda r: codec.decode_alignment(r.value),
        until=lambda got: any(e["type"] == "PROMISE_OPENED" for e in got),
    )
    assert any(e["type"] == "PROMISE_OPENED" for e in opened)
    assert worker.poll() is None
