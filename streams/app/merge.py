"""Merging a partition's input topics into one stream, in publication order.

Kafka orders records within a topic-partition only; a customer's commitment (sales.events) and the
complaint about it (service.events) sit in two partitions that a consumer fetches independently. Like
Kafka Streams' merge of co-partitioned inputs (KIP-695), a record is released only when it has the
smallest timestamp of the partition's buffered records and every other input topic of the partition
has a record buffered, or is proven to hold nothing stamped at or before it: read to an end offset
asked of the broker late enough (``progress.py``). There is no time limit: an unknown end is waited
for, because a guess is what applied a backfill's records out of order. Timestamps are the records'
Kafka timestamps (producer CreateTime); ``streams.publish`` makes them strictly increasing, also
from one publisher to the next one opened after it closed, so the merge reproduces exactly the order
the events were published in, which is the order ``replay`` reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")


class PartitionMerger(Generic[Item]):
    def __init__(self, topics: Sequence[str]) -> None:
        self._topics = tuple(topics)
        # partition -> topic -> (timestamp_ms, item)
        self._buffers: dict[int, dict[str, deque[tuple[int, Item]]]] = {}

    def add(self, partition: int, topic: str, timestamp_ms: int, item: Item) -> None:
        buffers = self._buffers.setdefault(partition, {t: deque() for t in self._topics})
        buffers[topic].append((timestamp_ms, item))

    def is_empty(self, partition: int) -> bool:
        buffers = self._buffers.get(partition)
        return buffers is None or not any(buffers.values())

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._buffers.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._buffers)

    def release(self, partition: int, complete_through: Callable[[str], int]) -> Iterator[Item]:
        """Items of the partition that can be applied now, oldest first.

        ``complete_through(topic)``: the timestamp up to which this partition of ``topic`` is proven
        to hold no record not buffered yet (``progress.NOT_KNOWN`` if nothing is proven).
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
            timestamp_ms, _, topic = min(heads)
            for other, buffer in buffers.items():
                if other != topic and not buffer and complete_through(other) < timestamp_ms:
                    return  # a record of `other` stamped before this one may still be on its way
            yield buffers[topic].popleft()[1]
