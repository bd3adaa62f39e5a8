"""Publishing input events the way a source system should: Avro (Confluent framing) with kafka-python.

Customer events are keyed by ``customer_id`` (Kafka's default partitioner then co-partitions a
customer's events across the four topics). Catalog facts (ClaimPublished, ClaimWithdrawn,
StockChanged) concern every customer, so they are written to every partition of their topic: each
partition's engine then learns them at the same point of its own stream (docs/architecture.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from streams import codec
from streams.contract import TOPIC_OF
from streams.contract.events import GLOBAL_EVENT_TYPES

CATALOG_TYPES = frozenset(event_type.__name__ for event_type in GLOBAL_EVENT_TYPES)


class EncodedEvent(NamedTuple):
    topic: str
    key: bytes | None  # None for a catalog fact, which goes to every partition
    value: bytes


def encode_event(event: Mapping[str, Any]) -> EncodedEvent:
    """Where an event goes and its Avro bytes (Confluent framing), keyed by its customer."""
    key = None if event["type"] in CATALOG_TYPES else event["customer_id"].encode()
    return EncodedEvent(TOPIC_OF[event["type"]], key, codec.encode(event))


#: Kafka 4 refuses a record stamped more than an hour ahead of the broker's clock
#: (log.message.timestamp.after.max.ms); a publisher stays well inside that.
MAX_AHEAD_MS = 5 * 60_000


class PublicationClock:
    """Record timestamps for one publisher: strictly increasing, so that consumers can merge the four
    topics back into the order the events were published in (streams/app/merge.py), and at wall time
    unless events go out faster than one a millisecond. A burst runs ahead of wall time, by at most
    ``max_ahead_ms`` (past that the publisher is slowed to a thousand events a second); a publisher
    opened after another must wait until the other's clock is passed (``wait_until_passed``)."""

    def __init__(
        self,
        *,
        max_ahead_ms: int = MAX_AHEAD_MS,
        wall_clock_s: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._max_ahead_ms = max_ahead_ms
        self._wall_clock_s = wall_clock_s
        self._sleep = sleep
        self._last_ms = 0

    def next_ms(self) -> int:
        now_ms = int(self._wall_clock_s() * 1000)
        stamp = max(now_ms, self._last_ms + 1)
        if stamp - now_ms > self._max_ahead_ms:
            self._sleep((stamp - now_ms - self._max_ahead_ms) / 1000)
        self._last_ms = stamp
        return stamp

    @property
    def ahead_s(self) -> float:
        """How far the last timestamp given is ahead of wall time (0 once the clock has passed it)."""
        return max(0.0, (self._last_ms + 1) / 1000 - self._wall_clock_s())

    def wait_until_passed(self) -> None:
        # A loop: sleep counts monotonic time, the stamps are wall time, which may be slewed meanwhile.
        while (ahead_s := self.ahead_s) > 0:
            self._sleep(ahead_s)


class EventPublisher:
    def __init__(self, bootstrap_servers: str, *, linger_ms: int = 5) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            linger_ms=linger_ms,
            batch_size=256 * 1024,
            max_in_flight_requests_per_connection=1,  # keeps a customer's events in order on retries
        )
        self._partitions: dict[str, list[int]] = {}
        self._clock = PublicationClock()

    def _partitions_of(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            found = self._producer.partitions_for(topic)
            if not found:
                raise RuntimeError(f"topic {topic} does not exist")
            self._partitions[topic] = sorted(found)
        return self._partitions[topic]

    def publish(self, event: Mapping[str, Any]) -> None:
        """One decoded-event dict (SPEC §3 fields, timestamps as epoch ms)."""
        self.send_encoded(encode_event(event))

    def send_encoded(self, event: EncodedEvent) -> None:
        """An event encoded beforehand (``encode_event``): a catalog fact to every partition."""
        stamp = self._clock.next_ms()
        if event.key is None:
            for partition in self._partitions_of(event.topic):
                self._producer.send(event.topic, value=event.value, partition=partition, timestamp_ms=stamp)
        else:
            self._producer.send(event.topic, key=event.key, value=event.value, timestamp_ms=stamp)

    def publish_all(self, events: Iterable[Mapping[str, Any]]) -> int:
        count = 0
        for event in events:
            self.publish(event)
            count += 1
        self._producer.flush()
        return count

    def send_raw(self, topic: str, value: bytes | None, key: bytes | None = None) -> FutureRecordMetadata:
        """Bytes as they are: for tests and fault drills that need malformed records. The future
        gives where the record landed (topic, partition, offset)."""
        return self._producer.send(topic, key=key, value=value, timestamp_ms=self._clock.next_ms())

    def flush(self) -> None:
        self._producer.flush()

    def close(self, *, hand_over: bool = True) -> None:
        """Flush and close. With ``hand_over``, return only once wall time has passed the last
        timestamp given: a burst runs ahead of the clock, and a publisher opened right after this one
        would otherwise stamp its first events earlier than this one's last, and consumers would merge
        them before those (a kill test saw a promise's keeping record merged after later events)."""
        self._producer.close()
        if hand_over:
            self._clock.wait_until_passed()

    @property
    def ahead_of_clock_s(self) -> float:
        """How far the last timestamp given is ahead of wall time: what ``close`` waits out."""
        return self._clock.ahead_s
