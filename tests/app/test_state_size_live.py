"""One customer's state of many MiB on the real broker: the worker stores it in records Kafka accepts
(1 MiB by default), goes on correlating everyone else, and a kill -9 loses or doubles none of it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from streams import codec
from streams.app.parts import PART_BYTES
from streams.settings import ALIGNMENT_TOPIC, STATE_CHANGELOG_TOPIC
from tests.live_pipeline import Pipeline

pytestmark = pytest.mark.stack

BIG = "big-customer"
COMMITMENTS = 3_000
#: 10 features of 200 characters: about 7 MiB of ledger for the 3,000 open promises (100 features
#: each would make it 60 MiB, and each batch writes the ledger twice: journal and parts)
FEATURES = 10
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WORKER_ENV = {"PL_SESSION_TIMEOUT_S": "6"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _commitment(customer: str, n: int, at: int, features: int) -> dict[str, Any]:
    return {
        "type": "CommitmentMade",
        "event_id": f"{customer}-commit-{n}",
        "customer_id": customer,
        "occurred_at": at,
        "source": "salesforce",
        "commitment_id": f"{customer}-commitment-{n}",
        "deal_id": f"{customer}-deal-{n}",
        "rep_name": None,
        "product": "lamp",
        "quantity": 2,
        "deliver_by": at + 30 * DAY_MS,  # nothing breaks while the test runs
        "unit_price": 49.0,
        "features": [f"feature {k} of commitment {n} ".ljust(200, "x") for k in range(features)],
    }


def _delivery(customer: str, n: int, at: int, features: list[str]) -> dict[str, Any]:
    return {
        "type": "OrderDelivered",
        "event_id": f"{customer}-delivered-{n}",
        "customer_id": customer,
        "occurred_at": at,
        "source": "erp",
        "order_id": f"{customer}-order-{n}",
        "deal_id": f"{customer}-deal-{n}",
        "product": "lamp",
        "quantity": 2,
        "features": features,
    }


def _alignment(pipeline: Pipeline, until: Any, timeout_s: float = 180) -> list[dict[str, Any]]:
    return pipeline.read(
        ALIGNMENT_TOPIC, lambda r: codec.decode_alignment(r.value), until=until, timeout_s=timeout_s
    )


def _opened(events: list[dict[str, Any]], customer: str) -> dict[str, set[str]]:
    """promise_id -> the alignment ids of its PROMISE_OPENED events (one, however often republished)."""
    opened: dict[str, set[str]] = {}
    for event in events:
        if event["customer_id"] == customer and event["type"] == "PROMISE_OPENED":
            opened.setdefault(event["promise_id"], set()).add(event["alignment_id"])
    return opened


def _changelog_record_sizes(bootstrap: str) -> list[int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(STATE_CHANGELOG_TOPIC, p)
            for p in sorted(consumer.partitions_for_topic(STATE_CHANGELOG_TOPIC) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        sizes: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=500).values():
                sizes.extend(len(r.key or b"") + len(r.value or b"") for r in batch)
        return sizes
    finally:
        consumer.close()


def test_a_customer_with_thousands_of_open_promises_stops_no_one_and_survives_kill_9(pipeline) -> None:
    start = _now_ms() - 2 * HOUR_MS  # one a second: all of them over an hour before now
    big = [_commitment(BIG, n, start + n * 1000, FEATURES) for n in range(COMMITMENTS)]
    good = "good-customer"
    worker = pipeline.start_worker("worker-0", **WORKER_ENV)
    pipeline.publish([*big, _commitment(good, 0, start + COMMITMENTS * 1000, 1)])
    # Killed in the middle of the stream, while the ledger of several MiB is rewritten every batch.
    _alignment(pipeline, lambda got: len(_opened(got, BIG)) >= COMMITMENTS // 3)
    pipeline.kill(worker)
    worker = pipeline.start_worker("worker-1", **WORKER_ENV)
    events = _alignment(pipeline, lambda got: _opened(got, good) and len(_opened(got, BIG)) >= COMMITMENTS)
    assert list(_opened(events, good)) == [f"{good}-commitment-0"]
    opened = _opened(events, BIG)
    assert set(opened) == {f"{BIG}-commitment-{n}" for n in range(COMMITMENTS)}
    assert all(len(ids) == 1 for ids in opened.values())  # republished after the kill, never doubled

    # Killed again with the whole ledger stored: the next worker reads it back from its parts.
    pipeline.kill(worker)
    worker = pipeline.start_worker("worker-2", **WORKER_ENV)
    delivered = [_delivery(BIG, n, _now_ms() - HOUR_MS // 2, big[n]["features"]) for n in (0, 2_999)]
    pipeline.publish(delivered)
    events = _alignment(
        pipeline, lambda got: sum(e["type"] == "PROMISE_KEPT" and e["customer_id"] == BIG for e in got) >= 2
    )
    kept = {e["promise_id"] for e in events if e["type"] == "PROMISE_KEPT" and e["customer_id"] == BIG}
    assert kept == {f"{BIG}-commitment-0", f"{BIG}-commitment-2999"}
    opened = _opened(events, BIG)
    assert len(opened) == COMMITMENTS and all(len(ids) == 1 for ids in opened.values())

    assert worker.poll() is None, pipeline.log_of("worker-2")
    for name in ("worker-0", "worker-1", "worker-2"):
        log = pipeline.log_of(name)
        # Without the bound, the batch whose ledger passed 1 MiB was refused, and again after a restart.
        for failure in ("MessageSizeTooLarge", "Crashed reason", "BrokenState"):
            assert failure not in log, log[-5000:]
    sizes = _changelog_record_sizes(pipeline.bootstrap)
    assert max(sizes) <= PART_BYTES + 1024
    assert sum(sizes) > 7 * 2**20  # the ledger was written, many times, in parts
