"""A dedup key counts as remembered only once Kafka confirmed its write; the notifier commits nothing
before that, so a failed write cannot become a duplicate Slack message after a restart."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError

from streams import codec
from streams.slack.durable import KafkaDeadLetters
from streams.slack.notifier import Notifier
from streams.slack.sent_keys import KafkaSentKeys
from tests.slack.test_notifier import FakeClock, MemoryDeadLetters, RecordingTransport, _alert


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> object:
        if self.error:
            raise self.error
        return object()


class FakeProducer:
    """kafka-python's send() never raises for a broker-side failure: its future does, on get()."""

    def __init__(self, fail_sends: int = 0) -> None:
        self.fail_sends = fail_sends
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.flushes = 0

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> FakeFuture:
        if self.fail_sends:
            self.fail_sends -= 1
            return FakeFuture(NotLeaderForPartitionError())
        self.sent.append((topic, key, value))
        return FakeFuture(None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1


def test_a_key_kafka_did_not_confirm_is_not_remembered() -> None:
    producer = FakeProducer(fail_sends=1)
    keys = KafkaSentKeys(producer, known=["old"])
    with pytest.raises(NotLeaderForPartitionError):
        keys.remember(["new-1", "new-2"])
    assert "new-1" not in keys and "new-2" not in keys and len(keys) == 1
    keys.remember(["new-1", "new-2"])
    assert "new-1" in keys and "new-2" in keys
    assert [key for _, key, _ in producer.sent] == [b"new-2", b"new-1", b"new-2"]


def test_a_flush_that_times_out_remembers_nothing() -> None:
    class SlowProducer(FakeProducer):
        def flush(self, timeout: float | None = None) -> None:
            raise KafkaTimeoutError("flush timed out")

    keys = KafkaSentKeys(SlowProducer())
    with pytest.raises(KafkaTimeoutError):
        keys.remember(["k"])
    assert "k" not in keys


def test_the_notifier_commits_nothing_until_kafka_confirmed_the_keys_and_posts_once() -> None:
    clock, transport, producer = FakeClock(), RecordingTransport(), FakeProducer(fail_sends=1)
    notifier = Notifier(
        transport,
        KafkaSentKeys(producer),
        MemoryDeadLetters(),
        window_s=0,
        monotonic=clock,
        jitter=lambda: 1.0,
    )
    notifier.add(_alert(1), partition="p0", offset=0)
    notifier.send_due()
    assert notifier.committable() == {"p0": 0}
    clock.now = 5
    notifier.send_due()
    assert notifier.committable() == {"p0": 1}
    assert len(transport.payloads) == 1


def test_a_dead_letter_kafka_did_not_confirm_raises() -> None:
    producer = FakeProducer(fail_sends=1)
    dead_letters = KafkaDeadLetters(producer)
    record: Any = (b"k", codec.encode_dead_letter(_dead_letter()))
    with pytest.raises(NotLeaderForPartitionError):
        dead_letters.publish([record])
    dead_letters.publish([record])
    assert producer.sent == [("alignment.dlq", b"k", record[1])]


def _dead_letter() -> dict[str, Any]:
    return {
        "reason": "slack_refused",
        "detail": "Slack answered HTTP 400: invalid_blocks",
        "topic": "alignment.alerts",
        "partition": 0,
        "offset": 7,
        "key": b"k",
        "value": b"v",
        "dead_lettered_at": 0,
    }
