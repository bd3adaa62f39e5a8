"""Merging a partition's input topics into one stream, in publication order.

Kafka orders records within a topic-partition only; a customer's commitment (sales.events) and the
complaint about it (service.events) sit in two partitions that a consumer fetches independently. Like
Kafka Streams' merge of co-partitioned inputs (KIP-695), a record is released only when it has the
smallest timestamp of the partition's buffered records and every other input topic of the partition
has a record buffered, or is read to its end. A topic known to hold records not fetched yet is always
waited for; only one whose end is unknown (no fetch answered yet) stops being waited for after
``max_wait_s``. Timestamps are the records'
Kafka timestamps (producer CreateTime); ``streams.publish`` makes them strictly increasing, also
from one publisher to the next one opened after it closed, so the merge reproduces exactly the order
the events were published in, which is the order ``replay`` reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import Generic, TypeVar

Item = TypeVar("Item")


class Fetched(Enum):
    TO_THE_END = "to the end"
    BEHIND = "behind"  # the broker holds records of it that are not fetched yet
    UNKNOWN = "unknown"


class PartitionMerger(Generic[Item]):
    def __init__(self, topics: Sequence[str], max_wait_s: float = 1.0) -> None:
        self._topics = tuple(topics)
        self._max_wait_s = max_wait_s
        # partition -> topic -> (timestamp_ms, arrival monotonic time, item)
        self._buffers: dict[int, dict[str, deque[tuple[int, float, Item]]]] = {}

    def add(self, partition: int, topic: str, timestamp_ms: int, arrived_at: float, item: Item) -> None:
        buffers = self._buffers.setdefault(partition, {t: deque() for t in self._topics})
        buffers[topic].append((timestamp_ms, arrived_at, item))

    def is_empty(self, partition: int) -> bool:
        buffers = self._buffers.get(partition)
        return buffers is None or not any(buffers.values())

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._buffers.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._buffers)

    def release(self, partition: int, now: float, fetched: Callable[[str], Fetched]) -> Iterator[Item]:
        """Items of the partition that can be applied now, oldest first.

        ``fetched(topic)`` tells how far this partition of that topic has been fetched.
        """
        buffers = self._buffers.get(partition)
        if buffers is None:
            return
        while True:
            heads = [
                (buffer[0][0], index, topic)
                for index, (topic, buffer) in enumerate(buffers.items())
                if buffer
            ]
            if not heads:
                return
            _, _, topic = min(heads)
            _, arrived_at, item = buffers[topic][0]
            waited_enough = now - arrived_at >= self._max_wait_s
            for other, buffer in buffers.items():
                if other == topic or buffer:
                    continue
                state = fetched(other)
                if state is Fetched.BEHIND or (state is Fetched.UNKNOWN and not waited_enough):
                    return  # a record of `other` published before this one may still be on its way
            buffers[topic].popleft()
            yield item
