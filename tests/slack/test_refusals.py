"""Slack's answers, permanent and transient: a refusal for good sets one group aside (dead letters with
Slack's answer) and the rest flows on; a transient failure is retried with backoff, losing nothing."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from kafka import TopicPartition

from streams import codec
from streams.slack import DeliveryFailed, DeliveryRefused, SlackWebhook
from streams.slack import notifier as notifier_module
from streams.slack.notifier import Notifier
from streams.slack.receiver import Reply, SlackLikeReceiver
from tests.slack.test_notifier import FakeClock, MemoryDeadLetters, MemorySentKeys, RecordingTransport, _alert

ALERTS = TopicPartition("alignment.alerts", 3)


def _add(notifier: Notifier, alert: dict[str, Any], offset: int) -> bytes:
    value = codec.encode_alert(
        {**_alert(0), "customer_value": 0.0, "claim_id": None, "rep_name": None, **alert}
    )
    notifier.add(codec.decode_alert(value), ALERTS, offset, key=alert["customer_id"].encode(), value=value)
    return value


def _group(n: int, name: str) -> dict[str, Any]:
    return _alert(n, group_key=name)


def _refused_count(reason: str, status: str) -> float:
    value = notifier_module.GROUPS_SET_ASIDE.labels(reason, status)._value.get()
    return float(value)


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, "invalid_blocks"), (403, "action_prohibited"), (404, "no_service"), (410, "channel_is_archived")],
)
def test_a_group_slack_refuses_for_good_is_dead_lettered_and_every_group_behind_it_is_delivered(
    status: int, body: str
) -> None:
    refused_before = _refused_count("slack_refused", str(status))
    dead_letters = MemoryDeadLetters()

    def refuse_poison(payload: dict[str, Any]) -> Reply | None:
        return Reply(status) if "poison" in payload["text"] else None

    with SlackLikeReceiver(refuse=refuse_poison) as slack:
        notifier = Notifier(
            SlackWebhook(slack.url, min_interval_s=0), MemorySentKeys(), dead_letters, window_s=0
        )
        values = {}
        for offset, name in enumerate(["first", "poison", "poison", "third", "fourth"]):
            values[offset] = _add(notifier, _group(offset, name), offset)
        assert notifier.send_due() == 3
        assert notifier.send_due() == 0  # the refused group is not tried again

    assert [delivery.payload["text"].split(" · ")[1] for delivery in slack.messages] == [
        "first",
        "third",
        "fourth",
    ]
    assert len(slack.refused) == 1, "a permanent refusal is not retried"
    assert notifier.committable() == {ALERTS: 5}
    letters = [codec.decode_dead_letter(value) for _, value in dead_letters.records]
    assert [(letter["offset"], letter["value"]) for letter in letters] == [(1, values[1]), (2, values[2])]
    for letter, (key, _) in zip(letters, dead_letters.records, strict=True):
        assert letter["reason"] == "slack_refused"
        assert f"HTTP {status}: {body}" in letter["detail"]
        assert (letter["topic"], letter["partition"]) == ("alignment.alerts", 3)
        assert key == letter["key"] == f"cust-{letter['offset']}".encode()
    assert _refused_count("slack_refused", str(status)) == refused_before + 1


def test_a_group_the_renderer_cannot_handle_is_set_aside_and_the_rest_flows_on(monkeypatch: Any) -> None:
    real_render = notifier_module.render

    def fragile_render(group: Any) -> dict[str, Any]:
        if group.group_key == "bad":
            raise ValueError("year 300000 is out of range")
        return real_render(group)

    monkeypatch.setattr(notifier_module, "render", fragile_render)
    transport, dead_letters = RecordingTransport(), MemoryDeadLetters()
    notifier = Notifier(transport, MemorySentKeys(), dead_letters, window_s=0)
    for offset, name in enumerate(["bad", "good"]):
        _add(notifier, _group(offset, name), offset)
    assert notifier.send_due() == 1
    (letter,) = [codec.decode_dead_letter(value) for _, value in dead_letters.records]
    assert letter["reason"] == "slack_unrenderable" and "out of range" in letter["detail"]
    assert notifier.committable() == {ALERTS: 2}


class FlakyTransport(RecordingTransport):
    """Fails with the scripted failures first, recording when each attempt came."""

    def __init__(self, clock: FakeClock, failures: list[Exception]) -> None:
        super().__init__()
        self.clock, self.script, self.attempts = clock, failures, []

    def post(self, payload: Any) -> None:
        self.attempts.append(self.clock.now)
        if self.script:
            raise self.script.pop(0)
        self.payloads.append(payload)


def _poll_until_sent(notifier: Notifier, clock: FakeClock, until: float, step: float = 0.5) -> None:
    while clock.now < until:
        notifier.send_due()
        clock.now += step


def test_transient_failures_back_off_exponentially_with_jitter_and_lose_nothing() -> None:
    clock = FakeClock()
    transport = FlakyTransport(clock, [DeliveryFailed("HTTP 503") for _ in range(4)])
    dead_letters = MemoryDeadLetters()
    notifier = Notifier(
        transport,
        MemorySentKeys(),
        dead_letters,
        monotonic=clock,
        window_s=0,
        retry_after_failure_s=4,
        jitter=lambda: 1.0,
    )
    for offset, name in enumerate(["a", "b"]):
        _add(notifier, _group(offset, name), offset)
    _poll_until_sent(notifier, clock, until=200)
    assert transport.attempts[:5] == [0, 4, 12, 28, 60]  # waits of 4, 8, 16, 32 s
    assert [p["text"].split(" · ")[1] for p in transport.payloads] == ["a", "b"]
    assert dead_letters.records == [] and notifier.committable() == {ALERTS: 2}


def test_the_jitter_spreads_a_wait_between_half_and_all_of_the_backoff() -> None:
    waits = []
    for jitter in (0.0, 0.5, 1.0):
        clock = FakeClock()
        transport = FlakyTransport(clock, [DeliveryFailed("timeout")])
        notifier = Notifier(
            transport,
            MemorySentKeys(),
            MemoryDeadLetters(),
            monotonic=clock,
            window_s=0,
            jitter=lambda j=jitter: j,
        )
        _add(notifier, _group(0, "a"), 0)
        _poll_until_sent(notifier, clock, until=20, step=0.25)
        waits.append(transport.attempts[1])
    assert waits == [2.5, 3.75, 5.0]


def test_slacks_retry_after_is_honoured_before_the_destination_is_tried_again() -> None:
    clock = FakeClock()
    transport = FlakyTransport(clock, [DeliveryFailed("HTTP 429", retry_after_s=120)])
    notifier = Notifier(transport, MemorySentKeys(), MemoryDeadLetters(), monotonic=clock, window_s=0)
    for offset, name in enumerate(["a", "b"]):
        _add(notifier, _group(offset, name), offset)
    _poll_until_sent(notifier, clock, until=200)
    assert transport.attempts == [0, 120, 120]
    assert notifier.committable() == {ALERTS: 2}


def test_the_webhook_tells_permanent_from_transient_answers() -> None:
    with SlackLikeReceiver(
        replies=[Reply(400), Reply(502), Reply(404), Reply(429, retry_after_s=120)]
    ) as slack:
        webhook = SlackWebhook(slack.url, min_interval_s=0, max_retries=1)
        with pytest.raises(DeliveryRefused) as refused:
            webhook.post({"text": "x"})
        assert (refused.value.status, refused.value.body) == (400, "invalid_blocks")
        with pytest.raises(DeliveryFailed, match="HTTP 502"):
            webhook.post({"text": "x"})
        with pytest.raises(DeliveryRefused, match="HTTP 404: no_service"):
            webhook.post({"text": "x"})
        started = time.monotonic()
        with pytest.raises(DeliveryFailed) as limited:
            webhook.post({"text": "x"})
    assert limited.value.retry_after_s == 120
    assert time.monotonic() - started < 5, (
        "a long Retry-After is waited by the notifier, not slept in the call"
    )


class FlakyDeadLetters(MemoryDeadLetters):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def publish(self, records: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("Kafka did not confirm")
        super().publish(records)


def test_dead_letters_kafka_did_not_confirm_keep_the_group_and_its_offsets() -> None:
    clock = FakeClock()
    transport = FlakyTransport(clock, [DeliveryRefused(400, "invalid_blocks") for _ in range(2)])
    dead_letters = FlakyDeadLetters(failures=1)
    notifier = Notifier(
        transport, MemorySentKeys(), dead_letters, monotonic=clock, window_s=0, jitter=lambda: 1.0
    )
    _add(notifier, _group(0, "a"), 0)
    notifier.send_due()
    assert dead_letters.records == [] and notifier.committable() == {ALERTS: 0}
    clock.now = 5
    notifier.send_due()
    assert len(dead_letters.records) == 1 and notifier.committable() == {ALERTS: 1}


class FlakySentKeys(MemorySentKeys):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def remember(self, keys: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("Kafka did not confirm")
        super().remember(keys)


def test_keys_kafka_did_not_confirm_hold_the_offsets_without_posting_the_group_again() -> None:
    clock = FakeClock()
    transport, sent = FlakyTransport(clock, []), FlakySentKeys(failures=1)
    notifier = Notifier(transport, sent, MemoryDeadLetters(), monotonic=clock, window_s=0, jitter=lambda: 1.0)
    _add(notifier, _group(0, "a"), 0)
    _add(notifier, _group(1, "b"), 1)
    assert notifier.send_due() == 1
    assert notifier.committable() == {ALERTS: 0} and sent.keys == set()
    _add(notifier, _group(0, "a"), 0)  # redelivered meanwhile: already in Slack
    clock.now = 5
    assert notifier.send_due() == 1
    assert [p["text"].split(" · ")[1] for p in transport.payloads] == ["a", "b"]
    assert sent.keys == {"claim-1:order-0", "claim-1:order-1"}
    assert notifier.committable() == {ALERTS: 2}


def test_log_lines_carry_a_short_form_of_a_long_group_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    group_key = "rep:" + "k" * 4_000
    clock = FakeClock()
    transport = FlakyTransport(clock, [DeliveryFailed("HTTP 500"), DeliveryRefused(400, "invalid_blocks")])
    notifier = Notifier(
        transport, MemorySentKeys(), MemoryDeadLetters(), monotonic=clock, window_s=0, jitter=lambda: 1.0
    )
    _add(notifier, _group(0, group_key), 0)
    notifier.send_due()
    clock.now = 10
    notifier.send_due()
    messages = [record.getMessage() for record in caplog.records if record.name.startswith("streams.slack")]
    assert len(messages) == 2, messages
    assert all("rep:kkkk" in message and len(message) < 300 for message in messages), messages


def test_a_record_of_the_alerts_topic_that_is_no_alert_is_dead_lettered_not_dropped() -> None:
    transport, dead_letters = RecordingTransport(), MemoryDeadLetters()
    notifier = Notifier(transport, MemorySentKeys(), dead_letters, window_s=0)
    notifier.add_undecodable(ALERTS, 0, key=b"k", value=b"\x00garbage", error="DecodeError: not Avro")
    _add(notifier, _group(1, "good"), 1)
    assert notifier.send_due() == 1
    (letter,) = [codec.decode_dead_letter(value) for _, value in dead_letters.records]
    assert (letter["reason"], letter["offset"], letter["value"]) == ("undecodable_alert", 0, b"\x00garbage")
    assert "not Avro" in letter["detail"]
    assert notifier.committable() == {ALERTS: 2}
