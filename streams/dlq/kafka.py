"""The dead-letter topic, the redriven markers and the source topics, through kafka-python.

Nothing here joins a consumer group: reading dead letters must not move anyone's offsets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from streams.dlq.letters import Marker, RawRecord
from streams.dlq.redriving import Outgoing
from streams.publish import PublicationClock
from streams.settings import DEAD_LETTER_TOPIC, REDRIVEN_TOPIC

if TYPE_CHECKING:
    from kafka import KafkaConsumer, KafkaProducer

POLL_TIMEOUT_MS = 500
#: reading stops with an error when the position has not moved for this long short of the end
STALL_S = 30.0
CONFIRM_TIMEOUT_S = 60.0


class KafkaUnavailable(Exception):
    """Kafka could not be reached, or a topic could not be read; the message is one line."""


def consumer(bootstrap_servers: str) -> KafkaConsumer:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=2 * 1024 * 1024,  # a dead letter wraps a record of up to 1 MiB
        )
    except KafkaError as error:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {bootstrap_servers} ({type(error).__name__})"
        ) from None


def read_to_end(reader: KafkaConsumer, topic: str, stall_s: float = STALL_S) -> Iterator[Any]:
    """Every record of ``topic`` from its beginning to the end offsets asked before reading, so an
    empty topic is done at once and records written meanwhile are not waited for."""
    from kafka import TopicPartition

    partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
    if not partitions:
        raise KafkaUnavailable(f"topic {topic} does not exist")
    ends = reader.end_offsets(partitions)
    reader.assign(partitions)
    reader.seek_to_beginning(*partitions)
    remaining = [tp for tp in partitions if reader.position(tp) < ends[tp]]
    last_move = time.monotonic()
    while remaining:
        for tp, records in reader.poll(timeout_ms=POLL_TIMEOUT_MS).items():
            end = ends[tp]
            for record in records:
                if record.offset < end:
                    yield record
            last_move = time.monotonic()
        # Positions, not the records seen: compaction and transaction markers leave offset gaps.
        remaining = [tp for tp in remaining if reader.position(tp) < ends[tp]]
        if remaining and time.monotonic() - last_move > stall_s:
            raise KafkaUnavailable(f"reading {topic} made no progress for {stall_s:.0f} s")


class KafkaDeadLetterLog:
    def __init__(self, reader: KafkaConsumer, topic: str = DEAD_LETTER_TOPIC) -> None:
        self._reader = reader
        self._topic = topic

    def records(self) -> Iterator[RawRecord]:
        for record in read_to_end(self._reader, self._topic):
            yield RawRecord(record.partition, record.offset, record.value, record.timestamp)


def read_markers(reader: KafkaConsumer, topic: str = REDRIVEN_TOPIC) -> dict[str, Marker]:
    """The latest marker per dead letter; none before the first redrive created the topic."""
    if not reader.partitions_for_topic(topic):
        return {}
    markers: dict[str, Marker] = {}
    for record in read_to_end(reader, topic):
        marker = Marker.from_record(record.key or b"", record.value or b"")
        if marker is not None:
            markers[marker.dead_letter] = marker
    return markers


class KafkaRedriveTarget:
    def __init__(
        self, bootstrap_servers: str, reader: KafkaConsumer, markers_topic: str = REDRIVEN_TOPIC
    ) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self._reader = reader
        self._markers_topic = markers_topic
        # Source systems' records were stamped by streams.publish: strictly increasing, so that the
        # worker merges its input topics in publication order; redriven records are stamped the same way.
        self._clock = PublicationClock()
        try:
            self._producer: KafkaProducer = KafkaProducer(
                bootstrap_servers=bootstrap_servers,
                acks="all",
                max_in_flight_requests_per_connection=1,  # retries keep a customer's records in order
                max_request_size=2 * 1024 * 1024,
            )
        except KafkaError as error:
            raise KafkaUnavailable(
                f"cannot reach Kafka at {bootstrap_servers} ({type(error).__name__})"
            ) from None

    def partitions_for(self, topic: str) -> set[int] | None:
        return set(self._reader.partitions_for_topic(topic) or ()) or None

    def send(self, records: Sequence[Outgoing]) -> list[str]:
        futures = [
            self._producer.send(
                record.topic,
                key=record.key,
                value=record.value,
                partition=record.partition,
                headers=record.headers,
                timestamp_ms=self._clock.next_ms(),
            )
            for record in records
        ]
        self._producer.flush(timeout=CONFIRM_TIMEOUT_S)
        metadata = [future.get(timeout=CONFIRM_TIMEOUT_S) for future in futures]
        return [f"{m.topic}:{m.partition}:{m.offset}" for m in metadata]

    def mark(self, markers: Sequence[Marker]) -> None:
        from streams.slack.durable import send_confirmed

        self._ensure_markers_topic()
        send_confirmed(
            self._producer,
            self._markers_topic,
            [(marker.dead_letter.encode(), marker.to_value()) for marker in markers],
            timeout_s=CONFIRM_TIMEOUT_S,
        )

    def _ensure_markers_topic(self) -> None:
        if self.partitions_for(self._markers_topic):
            return
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=self._producer.config["bootstrap_servers"])
        try:
            admin.create_topics(
                [NewTopic(self._markers_topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
            )
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()

    def close(self) -> None:
        """Waits until wall time passed the last stamp given, as a publisher does (streams.publish)."""
        self._producer.close()
        self._clock.wait_until_passed()


class KafkaDlq:
    """What `promise-ledger dlq` reads and writes, on one broker."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._reader = consumer(bootstrap_servers)
        self._target: KafkaRedriveTarget | None = None

    def log(self) -> KafkaDeadLetterLog:
        return KafkaDeadLetterLog(self._reader)

    def markers(self) -> dict[str, Marker]:
        return read_markers(self._reader)

    def target(self) -> KafkaRedriveTarget:
        if self._target is None:
            self._target = KafkaRedriveTarget(self._bootstrap_servers, self._reader)
        return self._target

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
        self._reader.close()
