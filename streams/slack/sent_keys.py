"""Dedup keys already delivered to Slack, kept in a compacted Kafka topic so every notifier that ever
takes over the alerts knows them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kafka import KafkaProducer

from streams.settings import SLACK_SENT_TOPIC
from streams.slack.durable import send_confirmed


class KafkaSentKeys:
    def __init__(
        self, producer: KafkaProducer, known: Iterable[str] = (), topic: str = SLACK_SENT_TOPIC
    ) -> None:
        self._producer = producer
        self._keys: set[str] = set(known)
        self._topic = topic

    @classmethod
    def connect(cls, bootstrap_servers: str, topic: str = SLACK_SENT_TOPIC) -> KafkaSentKeys:
        """The topic (created if missing) and every key it holds, read before the first alert."""
        from kafka import KafkaProducer

        _ensure_topic(bootstrap_servers, topic)
        known = _read_all(bootstrap_servers, topic)
        return cls(KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all"), known, topic)

    def __contains__(self, dedup_key: object) -> bool:
        return dedup_key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def remember(self, dedup_keys: Iterable[str]) -> None:
        """Durable before it returns: the caller commits alert offsets right after. Raises when Kafka
        did not confirm every write; then none of these keys counts as remembered."""
        new = [key for key in dedup_keys if key not in self._keys]
        send_confirmed(self._producer, self._topic, [(key.encode(), b"1") for key in new])
        self._keys.update(new)

    def close(self) -> None:
        self._producer.close()


def _ensure_topic(bootstrap_servers: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def _read_all(bootstrap_servers: str, topic: str) -> set[str]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        keys: set[str] = set()
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                keys.update(record.key.decode() for record in records if record.key)
        return keys
    finally:
        consumer.close()
