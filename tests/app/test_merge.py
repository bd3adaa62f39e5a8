"""A partition's topics merge into publication order, whatever order the consumer fetched them in."""

from __future__ import annotations

from streams.app.merge import PartitionMerger
from streams.app.progress import NOT_KNOWN

TOPICS = ("sales", "service")


def test_a_record_waits_until_every_other_topic_is_proven_complete_through_its_timestamp() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS)
    merger.add(0, "service", 20, "complaint")
    assert list(merger.release(0, lambda topic: NOT_KNOWN)) == []
    merger.add(0, "sales", 10, "commitment")
    assert list(merger.release(0, lambda topic: NOT_KNOWN)) == ["commitment"]
    # sales is empty again: the complaint goes only once sales holds nothing stamped at or before 20
    assert list(merger.release(0, lambda topic: 19)) == []
    assert list(merger.release(0, lambda topic: 20)) == ["complaint"]
    assert merger.is_empty(0)


def test_an_unknown_end_is_waited_for_however_long() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS)
    merger.add(3, "service", 20, "complaint")
    for _ in range(3):
        assert list(merger.release(3, lambda topic: NOT_KNOWN)) == []
    merger.add(3, "sales", 10, "commitment")
    assert list(merger.release(3, lambda topic: NOT_KNOWN)) == ["commitment"]


def test_interleaved_topics_come_out_in_timestamp_order_and_partitions_do_not_wait_for_each_other() -> None:
    merger: PartitionMerger[int] = PartitionMerger(TOPICS)
    for timestamp in (1, 4, 5):
        merger.add(0, "sales", timestamp, timestamp)
    for timestamp in (2, 3, 6):
        merger.add(0, "service", timestamp, timestamp)
    merger.add(1, "sales", 100, 100)
    assert list(merger.release(0, lambda topic: 1_000)) == [1, 2, 3, 4, 5, 6]
    assert list(merger.release(1, lambda topic: 1_000 if topic == "service" else NOT_KNOWN)) == [100]
