"""Merging a partition's input topics into one stream, in publication order.

Kafka orders records within a topic-partition only; a customer's commitment (sales.events) and the
complaint about it (service.events) sit in two partitions that a consumer fetches independently. Like
Kafka Streams' merge of co-partitioned inputs, a record is released only when it has the smallest
timestamp of the partition's buffered records AND every input topic either has a record buffered or
has been read to its end (or has kept the head waiting ``max_wait_s``). Timestamps are the records'
Kafka timestamps (producer CreateTime); ``streams.publish`` makes them strictly increasing, so the
merge reproduces exactly the order the events were published in, which is the order ``replay`` reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")


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

    def partitions(self) -> list[int]:
        return sorted(self._buffers)

    def release(self, partition: int, now: float, read_to_end: Callable[[str], bool]) -> Iterator[Item]:
        """Items of the partition that can be applied now, oldest first.

        ``read_to_end(topic)`` tells whether this partition of that topic has nothing more to fetch.
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
                if other != topic and not buffer and not waited_enough and not read_to_end(other):
                    return  # a record of `other` published before this one may still be on its way
            buffers[topic].popleft()
            yield item
