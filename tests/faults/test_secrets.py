"""Secrets never reach a log: worker, sink and notifier at their most verbose, with real traffic; and
a secret with stray whitespace around it (a newline from ``echo``) is stripped where it is read, so the
redaction matches what is sent, on the retry paths that log the URL."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from streams import codec
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC, Settings
from streams.slack import DeliveryFailed, SlackWebhook
from streams.slack.receiver import Reply, SlackLikeReceiver
from streams.slack.transport import webhook_url_from_env
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import broken_commitment_story, wait_for

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


@pytest.mark.stack
@pytest.mark.faults
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


WHITESPACE = [" ", "\n", "\r\n", " \t\n"]


@pytest.mark.parametrize("around", WHITESPACE, ids=repr)
def test_a_secret_read_from_the_environment_loses_surrounding_whitespace(
    around: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "https://hooks.slack.com/services/T1/B1/secret"
    assert webhook_url_from_env({"PL_SLACK_WEBHOOK_URL": around + url + around}) == url
    (tmp_path / "url").write_text(url + around, encoding="utf-8")
    assert webhook_url_from_env({"PL_SLACK_WEBHOOK_URL_FILE": str(tmp_path / "url")}) == url
    assert webhook_url_from_env({"PL_SLACK_WEBHOOK_URL": around}) is None
    monkeypatch.setenv("PL_CLICKHOUSE_PASSWORD", around + "pw" + around)
    monkeypatch.setenv("PL_CLICKHOUSE_ADMIN_PASSWORD", "admin-pw" + around)
    clickhouse = Settings.from_env().clickhouse
    assert (clickhouse.password, clickhouse.admin_password) == ("pw", "admin-pw")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG], ids=logging.getLevelName)
@pytest.mark.parametrize("around", WHITESPACE, ids=repr)
def test_a_webhook_url_with_whitespace_never_reaches_a_log_when_a_connection_is_retried(
    level: int, around: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(level)
    secret = f"conn-{uuid.uuid4().hex}"
    url = f"http://127.0.0.1:{_closed_port()}/services/TSECRET/BSECRET/{secret}"
    webhook = SlackWebhook(url + around, min_interval_s=0, max_retries=1)
    with pytest.raises(DeliveryFailed):
        webhook.post({"text": "x"})
    assert "Going to retry the same request: POST" in caplog.text, "the retry path that logs the URL ran"
    assert secret not in caplog.text and "/services/TSECRET" not in caplog.text


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG], ids=logging.getLevelName)
@pytest.mark.parametrize("around", WHITESPACE, ids=repr)
def test_a_webhook_url_with_whitespace_never_reaches_a_log_when_slack_asks_for_a_retry(
    level: int, around: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(level)
    secret = f"http-{uuid.uuid4().hex}"
    with SlackLikeReceiver(
        path=f"/services/TSECRET/BSECRET/{secret}", replies=[Reply(429, 0), Reply(500)]
    ) as slack:
        SlackWebhook(slack.url + around, min_interval_s=0).post({"text": "x"})
        assert len(slack.messages) == 1, "the whitespace is not sent either"
    assert "A retry handler found" in caplog.text
    assert secret not in caplog.text and "/services/TSECRET" not in caplog.text
