"""Writes to Kafka that the notifier may build on: each returns only once the broker confirmed every
record (acks=all), and raises otherwise, so the caller neither commits nor counts them done."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from streams.settings import DEAD_LETTER_TOPIC

CONFIRM_TIMEOUT_S = 30.0


def send_confirmed(
    producer: Any,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    timeout_s: float = CONFIRM_TIMEOUT_S,
) -> None:
    """Send (key, value) records and wait for the broker's answer to each; the first failure raises.

    ``flush()`` only waits for the requests to finish, failed or not: the futures hold the outcome.
    """
    futures = [producer.send(topic, key=key, value=value) for key, value in records]
    producer.flush(timeout=timeout_s)
    for future in futures:
        future.get(timeout=timeout_s)


class KafkaDeadLetters:
    """The dead-letter topic (``alignment.dlq``), for the notifier's Avro ``DeadLetter`` records."""

    def __init__(self, producer: Any, topic: str = DEAD_LETTER_TOPIC) -> None:
        self._producer = producer
        self._topic = topic

    @classmethod
    def connect(cls, bootstrap_servers: str, topic: str = DEAD_LETTER_TOPIC) -> KafkaDeadLetters:
        from kafka import KafkaProducer

        return cls(KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all"), topic)

    def publish(self, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        send_confirmed(self._producer, self._topic, records)

    def close(self) -> None:
        self._producer.close()
