"""`promise-ledger dlq` round trip on the real stack (issue 15): a hundred events dead-lettered by a
worker whose limits refuse them, the cause fixed (the worker restarted with the default limits), the
dead letters redriven, and each event correlated exactly once; a second redrive sends nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from streams import codec
from streams.dlq import REDRIVEN_FROM_HEADER
from streams.settings import ALIGNMENT_TOPIC, DEAD_LETTER_TOPIC
from tests.live_pipeline import HOUR_MS, wait_for

pytestmark = pytest.mark.stack

RECORDS = 100
WEB_PORT = 26101
SOURCE = "sales.events"


def _commitment(n: int, now_ms: int) -> dict[str, Any]:
    customer = f"redrive-{n}"
    return {
        "type": "CommitmentMade",
        "event_id": f"{customer}-commit",
        "customer_id": customer,
        # Made ten minutes ago: the worker holds an event back until its clock (wall time minus grace,
        # once caught up) has passed it, so a redrive of fresh events would be correlated 5 min later.
        "occurred_at": now_ms - 10 * 60_000 + n,
        "source": "salesforce",
        "commitment_id": f"{customer}-commitment",
        "deal_id": f"{customer}-deal",
        "rep_name": "Rep Redrive",
        "product": "lamp",
        "quantity": 2,  # over the narrowed limit below, well inside the default one
        "deliver_by": now_ms + 24 * HOUR_MS,
        "unit_price": 49.0,
        "features": [],
    }


def _dlq(pipeline: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "dlq", *args],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def test_dead_letters_redriven_after_the_fix_are_correlated_exactly_once(pipeline, tmp_path: Path) -> None:
    narrow = tmp_path / "narrow.toml"
    narrow.write_text("[limits]\nmax_quantity = 1\n", encoding="utf-8")
    worker = pipeline.start_worker("worker-narrow", WEB_PORT, PL_ENGINE_CONFIG=str(narrow))
    now = int(time.time() * 1000)
    events = [_commitment(n, now) for n in range(RECORDS)]
    ids = {event["event_id"] for event in events}
    pipeline.publish(events)

    dead = pipeline.read(
        DEAD_LETTER_TOPIC,
        lambda r: codec.decode_dead_letter(r.value),
        until=lambda got: len(got) >= RECORDS,
        timeout_s=120,
    )
    assert len(dead) == RECORDS, pipeline.log_of("worker-narrow")
    assert {d["reason"] for d in dead} == {"invalid_event"}
    assert all("quantity" in d["detail"] for d in dead)
    source_partition = {codec.decode(d["value"])["event_id"]: d["partition"] for d in dead}
    assert source_partition.keys() == ids
    pipeline.kill(worker, signal.SIGTERM)

    counted = _dlq(pipeline, "counts", "--json")
    assert counted.returncode == 0, counted.stderr
    # The sink's set-aside rows, if another test left some in ClickHouse, are not this test's.
    rows = [r for r in map(json.loads, counted.stdout.splitlines()) if r["origin"] != "sink"]
    assert [(r["reason"], r["topic"], r["dead_letters"], r["redriven"]) for r in rows] == [
        ("invalid_event", SOURCE, RECORDS, 0)
    ]

    # The fix: nothing but the cause, the worker's limits back to their defaults.
    worker = pipeline.start_worker("worker-fixed", WEB_PORT, PL_ENGINE_CONFIG="")
    redriven = _dlq(pipeline, "redrive", "--reason", "invalid_event", "--yes")
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.strip() == f"redriven {RECORDS} dead letters ({SOURCE}: {RECORDS})"

    def opened() -> list[dict[str, Any]]:
        alignment = pipeline.read(
            ALIGNMENT_TOPIC, lambda r: codec.decode_alignment(r.value), until=lambda got: False, timeout_s=3
        )
        return [a for a in alignment if a["type"] == "PROMISE_OPENED" and a["cause_event_id"] in ids]

    wait_for(lambda: len(opened()) >= RECORDS, 120, "the redriven commitments to be correlated")

    ends = _end_offsets(pipeline.bootstrap, SOURCE)
    again = _dlq(pipeline, "redrive", "--reason", "invalid_event", "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert f"skipping {RECORDS} already redriven" in again.stderr
    assert _end_offsets(pipeline.bootstrap, SOURCE) == ends

    time.sleep(5)  # anything sent twice would be correlated by now
    causes = sorted(a["cause_event_id"] for a in opened())
    assert causes == sorted(ids)  # each exactly once

    # Back on the partition each came from, marked with the dead letter it was redriven from.
    records = pipeline.read(SOURCE, lambda r: r, until=lambda got: False, timeout_s=3)
    marked = [r for r in records if any(name == REDRIVEN_FROM_HEADER for name, _ in r.headers)]
    assert len(marked) == RECORDS
    assert {codec.decode(r.value)["event_id"]: r.partition for r in marked} == source_partition
    assert all(dict(r.headers)[REDRIVEN_FROM_HEADER].startswith(b"alignment.dlq:") for r in marked)

    counted = _dlq(pipeline, "counts", "--json")
    rows = [r for r in map(json.loads, counted.stdout.splitlines()) if r["origin"] != "sink"]
    assert [r["redriven"] for r in rows] == [RECORDS]
    assert worker.poll() is None, pipeline.log_of("worker-fixed")
