"""`promise-ledger sink` on the real stack: every row once, through redelivery and a ClickHouse outage."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from clickhouse_driver import Client

from streams import codec
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import metric_sum, wait_for

pytestmark = pytest.mark.stack

DAY_MS = 86_400_000
START_MS = 1_772_000_000_000


def _alignment(n: int) -> dict[str, Any]:
    return {
        "alignment_id": f"al-{n:05d}",
        "type": "PROMISE_OPENED" if n % 2 else "PROMISE_BROKEN",
        "customer_id": f"c-{n % 37}",
        "at": START_MS + (n % 5) * DAY_MS,
        "promise_id": f"p-{n}",
        "department": ("MARKETING", "SALES", "SERVICE")[n % 3],
        "kind": "DELIVERY",
    }


def _alert(n: int) -> dict[str, Any]:
    return {
        "alert_id": f"al-{n:05d}",
        "dedup_key": f"p-{n}",
        "group_key": "sales:DELIVERY",
        "severity": "HIGH",
        "type": "PROMISE_BROKEN",
        "at": START_MS,
    }


def _publish(pipeline: Any, numbers: range) -> None:
    publisher = pipeline.publisher()
    for n in numbers:
        body = _alignment(n)
        publisher.send_raw(ALIGNMENT_TOPIC, codec.encode_alignment(body), body["customer_id"].encode())
        if body["type"] == "PROMISE_BROKEN":
            publisher.send_raw(ALERTS_TOPIC, codec.encode_alert(_alert(n)), body["customer_id"].encode())
    publisher.flush()
    publisher.close()


def _counts(client: Client) -> tuple[int, int, int]:
    events = client.execute("SELECT count(), uniqExact(alignment_id) FROM alignment_events FINAL")[0]
    alerts = client.execute("SELECT count() FROM alerts FINAL")[0][0]
    return events[0], events[1], alerts


def test_every_row_lands_once_even_when_the_batch_is_redelivered(pipeline, stack, scratch_database) -> None:
    sink = pipeline.start(
        "sink",
        "sink",
        "--batch-wait",
        "0.2",
        "--metrics-port",
        "0",
        env={"PL_CLICKHOUSE_DATABASE": scratch_database},
    )
    _publish(pipeline, range(2_000))
    _publish(pipeline, range(500))  # the same records again, as after a producer retry
    client = pipeline_client(stack, scratch_database)
    wait_for(lambda: _counts(client) == (2_000, 2_000, 1_000), 60, "2000 events and 1000 alerts")
    made = client.execute("SELECT sum(made) FROM scorecard_daily")[0][0]
    assert made == 1_000
    assert sink.poll() is None, pipeline.log_of("sink")


@pytest.mark.parametrize("outage_s", [30, pytest.param(60, marks=pytest.mark.faults)])
def test_clickhouse_down_loses_nothing_and_the_lag_shows(
    pipeline, stack, stack_module, scratch_database, outage_s: int
) -> None:
    pipeline.start(
        "sink",
        "sink",
        "--batch-wait",
        "0.2",
        "--metrics-port",
        "19108",
        env={"PL_CLICKHOUSE_DATABASE": scratch_database},
    )
    client = pipeline_client(stack, scratch_database)
    _publish(pipeline, range(1_000))
    wait_for(lambda: _counts(client)[0] == 1_000, 60, "the first half")
    clickhouse = stack_module.ClickHouse(stack)
    assert clickhouse.process.stop()
    try:
        _publish(pipeline, range(1_000, 2_000))
        time.sleep(outage_s)
        metrics = urllib.request.urlopen("http://127.0.0.1:19108/metrics", timeout=5).read().decode()
        assert "ledger_sink_clickhouse_up 0.0" in metrics
        # the sink stopped reading while it retries: the backlog waits in Kafka, and the metrics show it
        backlog = metric_sum(metrics, "ledger_sink_backlog_records")
        assert backlog >= 1_500, metrics
    finally:
        clickhouse.up()
    recovered = time.monotonic()
    client = pipeline_client(stack, scratch_database)
    wait_for(lambda: _counts(client) == (2_000, 2_000, 1_000), 90, "every row after the outage")
    stored_after_s = time.monotonic() - recovered
    print(f"\nClickHouse down {outage_s}s, backlog {backlog:.0f}; all stored {stored_after_s:.1f}s after")
    assert pipeline.log_of("sink").count(stack.clickhouse_password) == 0
