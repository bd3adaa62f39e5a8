"""A storm on Slack's side: 429 with Retry-After on every second call, bursts of 500 alerts, and the
notifier restarted half-way. `promise-ledger notify` end to end through Kafka: every group reaches
Slack exactly once, in the order its first alert was published, and every dedup key is remembered.
And a group Slack refuses for good: dead-lettered with Slack's answer, every other group delivered."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer

from streams import codec
from streams.settings import ALERTS_TOPIC, DEAD_LETTER_TOPIC, NOTIFIER_GROUP, SLACK_SENT_TOPIC
from streams.slack.receiver import Reply, SlackLikeReceiver
from tests.live_pipeline import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.faults]

ALERTS_PER_BURST = 500
GROUPS_PER_BURST = 4
START_MS = 1_772_000_000_000


def _alert(n: int, group: int) -> dict[str, Any]:
    return {
        "alert_id": f"storm-{n}",
        "dedup_key": f"storm-promise-{n}",
        "group_key": f"storm:{group:02d}",
        "severity": "HIGH",
        "type": "PROMISE_BROKEN",
        "customer_id": f"storm-customer-{n}",
        "at": START_MS + n,
    }


def _burst(pipeline: Any, first_group: int, first_alert: int) -> list[str]:
    """500 alerts in GROUPS_PER_BURST groups, interleaved; one key, so one partition keeps their order."""
    publisher = pipeline.publisher()
    for i in range(ALERTS_PER_BURST):
        alert = _alert(first_alert + i, first_group + i % GROUPS_PER_BURST)
        publisher.send_raw(ALERTS_TOPIC, codec.encode_alert(alert), key=b"storm")
    publisher.flush()
    publisher.close()
    return [f"storm:{first_group + g:02d}" for g in range(GROUPS_PER_BURST)]


def _start_notifier(pipeline: Any, slack: SlackLikeReceiver, name: str) -> Any:
    return pipeline.start(
        name,
        "notify",
        "--window",
        "1",
        "--metrics-port",
        "0",
        env={"PL_SLACK_WEBHOOK_URL": slack.url},
    )


def _remembered_keys(bootstrap: str) -> list[str]:
    consumer = KafkaConsumer(
        SLACK_SENT_TOPIC,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        return [record.key.decode() for record in consumer]
    finally:
        consumer.close()


def test_rate_limited_bursts_reach_slack_once_each_in_order_across_a_restart(pipeline) -> None:
    throttled = [Reply(429, retry_after_s=1), Reply(200)] * 40
    with SlackLikeReceiver(replies=throttled) as slack:
        started = time.monotonic()
        first = _start_notifier(pipeline, slack, "notify-1")
        expected = _burst(pipeline, 0, 0)
        wait_for(lambda: len(slack.messages) >= 2, 60, "the first groups in Slack")
        # A graceful stop mid-storm: the notifier posts what it holds, then commits and exits.
        pipeline.kill(first, signal.SIGTERM)
        assert first.returncode == 0, pipeline.log_of("notify-1")
        _start_notifier(pipeline, slack, "notify-2")
        expected += _burst(pipeline, GROUPS_PER_BURST, ALERTS_PER_BURST)
        wait_for(lambda: len(slack.messages) >= len(expected), 90, "every group in Slack")
        time.sleep(2)  # room for a duplicate to show up
        elapsed = time.monotonic() - started
        pipeline.stop_all()

    titles = [delivery.payload["text"] for delivery in slack.messages]
    delivered_groups = [title.rsplit(" · ", 1)[-1] for title in titles]
    assert delivered_groups == expected, titles
    per_group = ALERTS_PER_BURST // GROUPS_PER_BURST
    assert all(title.startswith(f"{per_group} broken promises") for title in titles), titles
    rate_limited = sum(status == 429 for _, status in slack.attempts)
    assert rate_limited >= len(expected) - 1, "the storm was really on: Slack refused about every second call"
    remembered = _remembered_keys(pipeline.bootstrap)
    assert sorted(remembered) == sorted(f"storm-promise-{n}" for n in range(2 * ALERTS_PER_BURST))
    print(
        f"\n{2 * ALERTS_PER_BURST} alerts, {len(expected)} groups, {rate_limited} answers 429: "
        f"delivered once each in {elapsed:.1f}s"
    )


def _committed(bootstrap: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(NOTIFIER_GROUP).get(NOTIFIER_GROUP, {})
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == ALERTS_TOPIC)
    finally:
        admin.close()


def test_a_group_slack_refuses_for_good_is_dead_lettered_and_every_other_group_is_delivered(pipeline) -> None:
    poison = f"storm:{1:02d}"

    def refuse(payload: dict[str, Any]) -> Reply | None:
        return Reply(400) if payload["text"].endswith(f" · {poison}") else None

    with SlackLikeReceiver(refuse=refuse) as slack:
        notifier = _start_notifier(pipeline, slack, "notify")
        publisher = pipeline.publisher()
        sent: dict[int, bytes] = {}
        for n in range(40):  # groups 00..03 interleaved, one key: one partition keeps their order
            sent[n] = codec.encode_alert(_alert(n, n % GROUPS_PER_BURST))
            publisher.send_raw(ALERTS_TOPIC, sent[n], key=b"refusal")
        publisher.flush()
        wait_for(lambda: len(slack.messages) >= GROUPS_PER_BURST - 1, 60, "every other group in Slack")
        letters = pipeline.read(
            DEAD_LETTER_TOPIC,
            lambda record: codec.decode_dead_letter(record.value),
            until=lambda got: len(got) >= 10,
        )
        wait_for(lambda: _committed(pipeline.bootstrap) >= 40, 30, "every alert's offset committed")
        # the notifier flows on: a group published after the refusal reaches Slack too
        publisher.send_raw(ALERTS_TOPIC, codec.encode_alert(_alert(40, 9)), key=b"refusal")
        publisher.flush()
        publisher.close()
        wait_for(lambda: len(slack.messages) >= GROUPS_PER_BURST, 60, "the later group in Slack")
        assert notifier.poll() is None, "the notifier never stopped"
        pipeline.stop_all()

    delivered = [delivery.payload["text"].rsplit(" · ", 1)[-1] for delivery in slack.messages]
    assert delivered == ["storm:00", "storm:02", "storm:03", "storm:09"]
    assert len(slack.refused) == 1, "a refusal for good is not retried"
    assert sorted(letter["offset"] for letter in letters) == list(range(1, 40, GROUPS_PER_BURST))
    for letter in letters:
        assert letter["reason"] == "slack_refused"
        assert "HTTP 400: invalid_blocks" in letter["detail"]
        assert letter["topic"] == ALERTS_TOPIC and letter["key"] == b"refusal"
        assert letter["value"] == sent[letter["offset"]]
