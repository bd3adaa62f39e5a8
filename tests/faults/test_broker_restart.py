"""The Kafka broker restarts mid-stream: worker, sink and notifier carry on by themselves, and every
output reaches Kafka, ClickHouse and Slack; Slack sees each broken promise once."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from streams.slack.receiver import SlackLikeReceiver
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import broken_commitment_story, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.faults]

HOUR_MS = 3_600_000
CUSTOMERS_PER_BATCH = 5


def _publish_batch(pipeline: Any, prefix: str) -> list[str]:
    customers = [f"{prefix}-{n}" for n in range(CUSTOMERS_PER_BATCH)]
    start = int(time.time() * 1000) - 10 * 24 * HOUR_MS
    pipeline.publish(event for customer in customers for event in broken_commitment_story(customer, start))
    return customers


def _stored(stack: Any, database: str) -> set[tuple[str, str]]:
    """(customer, type) of every stored alignment event of the customers' commitments."""
    client = pipeline_client(stack, database)
    try:
        return set(
            client.execute(
                "SELECT customer_id, type FROM alignment_events FINAL "
                "WHERE type IN ('PROMISE_BROKEN', 'COMPLAINT_ATTRIBUTED') AND kind != 'FIRST_REPLY'"
            )
        )
    except Exception:  # the sink creates the tables when it starts
        return set()
    finally:
        client.disconnect()


def _slack_reps(slack: SlackLikeReceiver) -> list[str]:
    """The rep group of every message: one per broken commitment (each customer has its own rep)."""
    titles = [delivery.payload["text"] for delivery in slack.messages]
    return [match.group(1) for title in titles if (match := re.search(r"rep:Rep (\S+)$", title))]


def test_a_broker_restart_mid_stream_loses_nothing_and_doubles_no_alert(
    pipeline, stack, stack_module, scratch_database
) -> None:
    kafka = stack_module.Kafka(stack)
    with SlackLikeReceiver() as slack:
        worker = pipeline.start_worker(web_port=26004)
        sink = pipeline.start(
            "sink",
            "sink",
            "--batch-wait",
            "0.2",
            "--metrics-port",
            "0",
            env={"PL_CLICKHOUSE_DATABASE": scratch_database},
        )
        notifier = pipeline.start(
            "notify",
            "notify",
            "--window",
            "0.5",
            "--metrics-port",
            "0",
            env={"PL_SLACK_WEBHOOK_URL": slack.url},
        )
        before = _publish_batch(pipeline, "before")
        # Every process is up and has its partitions: outputs reach Slack and ClickHouse.
        wait_for(lambda: len(_slack_reps(slack)) >= 1, 60, "the first alert in Slack")
        wait_for(lambda: _stored(stack, scratch_database), 60, "the first output in ClickHouse")
        outage_started = time.monotonic()
        assert kafka.process.stop()
        time.sleep(5)
        kafka.up()
        outage_s = time.monotonic() - outage_started
        recovered = time.monotonic()
        after = _publish_batch(pipeline, "after")
        customers = before + after
        expected = {(c, t) for c in customers for t in ("PROMISE_BROKEN", "COMPLAINT_ATTRIBUTED")}
        wait_for(lambda: _stored(stack, scratch_database) >= expected, 120, "every output in ClickHouse")
        wait_for(lambda: set(_slack_reps(slack)) >= set(customers), 60, "every alert in Slack")
        caught_up_s = time.monotonic() - recovered
        time.sleep(2)  # room for a duplicate to show up
        for name, process in (("worker", worker), ("sink", sink), ("notify", notifier)):
            assert process.poll() is None, f"{name} stopped:\n{pipeline.log_of(name)[-3000:]}"
        pipeline.stop_all()

    assert sorted(_slack_reps(slack)) == sorted(customers)
    assert _stored(stack, scratch_database) == expected
    print(f"\nbroker down {outage_s:.1f}s; caught up {caught_up_s:.1f}s after it came back")
