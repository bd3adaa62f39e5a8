"""Secrets never reach a log: worker, sink and notifier at their most verbose, with real traffic."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from streams import codec
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC
from streams.slack.receiver import SlackLikeReceiver
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import broken_commitment_story, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.faults]

HOUR_MS = 3_600_000
CUSTOMERS = 4


def _rows(stack: Any, database: str) -> int:
    client = pipeline_client(stack, database)
    try:
        return int(client.execute("SELECT count() FROM alignment_events FINAL")[0][0])
    except Exception:  # the sink creates the tables when it starts
        return 0
    finally:
        client.disconnect()


def test_no_secret_appears_in_any_log_at_debug_level(pipeline, stack, scratch_database) -> None:
    webhook_secret = f"fault-{uuid.uuid4().hex}"
    with SlackLikeReceiver(path=f"/services/TFAULT/BFAULT/{webhook_secret}") as slack:
        pipeline.start("worker", "worker", "--web-port", "26002", "--loglevel", "debug")
        pipeline.start(
            "sink",
            "sink",
            "--verbose",
            "--batch-wait",
            "0.2",
            "--metrics-port",
            "0",
            env={"PL_CLICKHOUSE_DATABASE": scratch_database},
        )
        pipeline.start(
            "notify",
            "notify",
            "--verbose",
            "--window",
            "0.5",
            "--metrics-port",
            "0",
            env={"PL_SLACK_WEBHOOK_URL": slack.url},
        )
        start = int(time.time() * 1000) - 10 * 24 * HOUR_MS
        pipeline.publish(
            event
            for n in range(CUSTOMERS)
            for event in broken_commitment_story(f"secret-{n}", start + n * 1000)
        )
        # each story breaks twice: the commitment, and the ticket's first reply once the idle clock passes it
        expected = {f"secret-{n}-{end}" for n in range(CUSTOMERS) for end in ("commitment", "t1:first-reply")}
        alerts = pipeline.read(
            ALERTS_TOPIC,
            lambda r: codec.decode_alert(r.value)["dedup_key"],
            until=lambda got: set(got) >= expected,
        )
        assert set(alerts) == expected
        alignment = pipeline.read(
            ALIGNMENT_TOPIC,
            lambda r: codec.decode_alignment(r.value),
            until=lambda got: len(got) >= 3 * CUSTOMERS,
        )
        wait_for(lambda: len(slack.messages) >= CUSTOMERS, 60, "every alert in Slack")
        wait_for(lambda: _rows(stack, scratch_database) >= len(alignment), 60, "every row in ClickHouse")
        pipeline.stop_all()  # while Slack still answers, so the notifier stops at once
    logs = {name: pipeline.log_of(name) for name in ("worker", "sink", "notify")}
    assert all(logs.values()), "every process wrote a log"
    assert all("DEBUG" in text for text in logs.values()), "every log is at debug level"
    for name, text in logs.items():
        assert stack.clickhouse_password not in text, f"the ClickHouse password is in the {name} log"
        assert webhook_secret not in text, f"the webhook URL's secret is in the {name} log"
        assert "/services/TFAULT" not in text, f"the webhook URL path is in the {name} log"
