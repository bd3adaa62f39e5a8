"""Slack delivery against a local endpoint that behaves like Slack's incoming webhook."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from streams.slack import AlertGroup, DeliveryFailed, SlackWebhook, escape, render
from streams.slack.notifier import Notifier
from streams.slack.receiver import Reply, SlackLikeReceiver, as_slack_shows_it

INJECTIONS = [
    "<!channel> refund me",
    "<!here|here>",
    "<!everyone>",
    "@everyone look",
    "@here",
    "hi @channel",
    "<@U024BE7LH> ping",
    "<#C024BE7LR>",
    "<http://evil.example/login|Reset your password>",
    "<https://evil.example>",
    "&lt;!channel&gt; pre-escaped",
    "`code` *bold* ~strike~ <tag>",
    "\u202e reversed <!subteam^S123>",
]


def _alert(n: int, group_key: str = "stockout:lamp", **fields: Any) -> dict[str, Any]:
    return {
        "alert_id": f"al-{n}",
        "dedup_key": f"claim-1:order-{n}",
        "group_key": group_key,
        "severity": "HIGH",
        "type": "PROMISE_BROKEN",
        "customer_id": f"cust-{n}",
        "promise_id": f"claim-1:order-{n}",
        "department": "MARKETING",
        "kind": "SHIPPING",
        "reason": "NOT_SHIPPED",
        "at": 1_772_000_000_000,
        "due_at": 1_772_000_000_000,
        "product": "lamp",
        **fields,
    }


def _texts(payload: Any) -> Iterator[str]:
    if isinstance(payload, dict):
        for value in payload.values():
            yield from _texts(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from _texts(value)
    elif isinstance(payload, str):
        yield payload


CONTROL_SEQUENCE = re.compile(r"<[!@#]|<https?:|<mailto:|(?<![\w\u2060])@(everyone|here|channel)\b", re.I)


@pytest.mark.parametrize("typed", INJECTIONS)
def test_text_from_events_cannot_ping_or_forge_links(typed: str) -> None:
    alert = _alert(1, customer_id=typed, promise_id=typed, reason=typed, product=typed, department=typed)
    payload = render(AlertGroup(typed, [alert]))
    for text in _texts(payload):
        assert not CONTROL_SEQUENCE.search(text), text
    assert "<" not in escape(typed) and ">" not in escape(typed)


def test_escaped_text_still_reads_as_typed() -> None:
    payload = render(AlertGroup("rep:Ann & Bob", [_alert(1, customer_id="a<b>&c")]))
    assert "a<b>&c" in as_slack_shows_it(payload)


def test_message_carries_what_ops_need_and_the_ids_to_explain_it() -> None:
    shown = as_slack_shows_it(render(AlertGroup("stockout:lamp", [_alert(7)])))
    for fact in ("cust-7", "claim-1:order-7", "MARKETING", "SHIPPING", "NOT_SHIPPED", "HIGH", "UTC"):
        assert fact in shown
    assert "promise-ledger explain claim-1:order-7" in shown


def test_a_big_group_is_one_message_within_slack_limits() -> None:
    payload = render(AlertGroup("stockout:lamp", [_alert(n) for n in range(40)]))
    assert len(payload["blocks"]) <= 50
    assert "40 broken promises" in payload["text"]
    assert "30 more" in as_slack_shows_it(payload)


def test_429_retry_after_is_honoured_then_delivered_once() -> None:
    with SlackLikeReceiver(replies=[Reply(429, retry_after_s=1)]) as slack:
        SlackWebhook(slack.url).post(render(AlertGroup("g", [_alert(1)])))
    (first, status_1), (second, status_2) = slack.attempts
    assert (status_1, status_2) == (429, 200)
    assert second - first >= 1.0
    assert len(slack.messages) == 1


def test_server_errors_are_retried_then_given_up_with_delivery_failed() -> None:
    with SlackLikeReceiver(replies=[Reply(500), Reply(503)]) as slack:
        SlackWebhook(slack.url).post({"text": "x"})
        assert [status for _, status in slack.attempts] == [500, 503, 200]
        slack.queue(*[Reply(500)] * 10)
        with pytest.raises(DeliveryFailed, match="HTTP 500"):
            SlackWebhook(slack.url, max_retries=2).post({"text": "y"})
    assert len(slack.messages) == 1


def test_at_most_one_message_per_second_per_webhook() -> None:
    with SlackLikeReceiver() as slack:
        webhook = SlackWebhook(slack.url)
        for n in range(3):
            webhook.post({"text": str(n)})
    times = [at for at, _ in slack.attempts]
    assert all(later - earlier >= 0.99 for earlier, later in itertools.pairwise(times))


def test_webhook_url_never_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with SlackLikeReceiver(replies=[Reply(429, retry_after_s=0), Reply(500)]) as slack:
        webhook = SlackWebhook(slack.url)
        webhook.post({"text": "x"})
        logging.getLogger("test").info("webhook is %r", webhook)
    assert caplog.records, "the retries were expected to log something"
    assert slack.path not in caplog.text
    assert "local-secret" not in caplog.text


class MemorySentKeys:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def remember(self, keys: Iterable[str]) -> None:
        self.keys.update(keys)


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []

    def publish(self, records: Any) -> None:
        self.records.extend(records)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingTransport:
    def __init__(self, failures: int = 0) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.failures = failures

    def post(self, payload: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryFailed("HTTP 500")
        self.payloads.append(payload)


def test_one_cause_is_one_message_after_the_window_and_groups_keep_their_order() -> None:
    clock, transport, sent = FakeClock(), RecordingTransport(), MemorySentKeys()
    notifier = Notifier(transport, sent, MemoryDeadLetters(), window_s=10, monotonic=clock)
    for n in range(40):
        notifier.add(_alert(n), partition="p0", offset=n)
    clock.now = 2
    notifier.add(_alert(100, group_key="rep:Dana", dedup_key="deal-9"), partition="p1", offset=0)
    clock.now = 9.9
    assert notifier.send_due() == 0
    clock.now = 10
    assert notifier.send_due() == 1
    clock.now = 12
    assert notifier.send_due() == 1
    assert [p["text"] for p in transport.payloads] == [
        "40 broken promises · stockout:lamp",
        "1 broken promise · rep:Dana",
    ]
    assert notifier.committable() == {"p0": 40, "p1": 1}


def test_a_dedup_key_reaches_slack_once_even_when_redelivered_after_a_restart() -> None:
    clock, transport, sent = FakeClock(), RecordingTransport(), MemorySentKeys()
    first = Notifier(transport, sent, MemoryDeadLetters(), window_s=1, monotonic=clock)
    first.add(_alert(1), partition="p0", offset=0)
    first.add(_alert(1), partition="p0", offset=1)  # redelivered while its group is open
    clock.now = 1
    first.send_due()
    restarted = Notifier(
        transport, sent, MemoryDeadLetters(), window_s=1, monotonic=clock
    )  # same remembered keys
    restarted.add(_alert(1), partition="p0", offset=0)
    clock.now = 5
    restarted.send_due(everything=True)
    assert len(transport.payloads) == 1
    assert len(transport.payloads[0]["blocks"]) == 3  # title + one alert + its explain hint
    assert restarted.committable() == {"p0": 1}


def test_a_failed_group_holds_back_later_groups_and_its_offsets() -> None:
    clock, transport, sent = FakeClock(), RecordingTransport(failures=1), MemorySentKeys()
    notifier = Notifier(
        transport, sent, MemoryDeadLetters(), window_s=0, retry_after_failure_s=5, monotonic=clock
    )
    notifier.add(_alert(1, group_key="a"), partition="p0", offset=0)
    notifier.add(_alert(2, group_key="b"), partition="p0", offset=1)
    assert notifier.send_due() == 0
    assert notifier.committable() == {"p0": 0}
    clock.now = 5
    assert notifier.send_due() == 2
    assert [p["text"].split(" · ")[1] for p in transport.payloads] == ["a", "b"]
    assert notifier.committable() == {"p0": 2}


def test_a_contradiction_alert_names_its_claim_and_product_and_offers_no_explain_command() -> None:
    contradiction = {
        "alert_id": "c1",
        "dedup_key": "contradiction:claim-7:lamp",
        "group_key": "stockout:lamp",
        "severity": "HIGH",
        "type": "CONTRADICTION",
        "customer_id": None,
        "promise_id": None,
        "department": "MARKETING",
        "reason": "STOCKOUT",
        "claim_id": "claim-7",
        "product": "lamp",
        "at": 0,
    }
    shown = as_slack_shows_it(render(AlertGroup("stockout:lamp", [contradiction])))
    assert "claim-7" in shown and "lamp" in shown and "STOCKOUT" in shown
    assert "promise-ledger explain" not in shown


class RebalancingConsumer:
    """Hands out its records once, then nothing; the first ``refusals`` commits meet a rebalance."""

    def __init__(self, records: list[Any], refusals: int) -> None:
        self.records, self.refusals = records, refusals
        self.commits: list[dict[Any, int]] = []

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]:
        records, self.records = self.records, []
        return {"alerts-0": records} if records else {}

    def commit(self, offsets: Any = None) -> None:
        from kafka.errors import RebalanceInProgressError

        if self.refusals:
            self.refusals -= 1
            raise RebalanceInProgressError("the group is rebalancing")
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})


def test_a_commit_refused_by_a_rebalance_is_retried_and_the_notifier_keeps_running() -> None:
    from types import SimpleNamespace

    from streams.slack.notifier import run_notifier

    alerts = [_alert(n, group_key=f"g{n}") for n in range(3)]
    records = [
        SimpleNamespace(topic="alignment.alerts", partition=0, offset=n, key=None, value=n) for n in range(3)
    ]
    consumer = RebalancingConsumer(records, refusals=2)
    transport = RecordingTransport()
    notifier = Notifier(transport, MemorySentKeys(), MemoryDeadLetters(), window_s=0)
    rounds = itertools.count()
    run_notifier(consumer, notifier, lambda value: alerts[value], should_stop=lambda: next(rounds) >= 4)
    assert len(transport.payloads) == 3
    assert consumer.commits and list(consumer.commits[-1].values()) == [3]
