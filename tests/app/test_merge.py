"""A partition's topics merge into publication order, whatever order the consumer fetched them in."""

from __future__ import annotations

from streams.app.merge import PartitionMerger

TOPICS = ("sales", "service")


def test_a_record_waits_for_a_topic_that_may_still_hold_an_earlier_one() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS, max_wait_s=1.0)
    merger.add(0, "service", 20, arrived_at=0.0, item="complaint")
    assert list(merger.release(0, now=0.1, read_to_end=lambda topic: False)) == []
    merger.add(0, "sales", 10, arrived_at=0.2, item="commitment")
    assert list(merger.release(0, now=0.2, read_to_end=lambda topic: False)) == ["commitment"]
    # the sales partition is now empty: the complaint goes once sales is known to be read to its end
    assert list(merger.release(0, now=0.3, read_to_end=lambda topic: False)) == []
    assert list(merger.release(0, now=0.3, read_to_end=lambda topic: True)) == ["complaint"]
    assert merger.is_empty(0)


def test_a_head_that_waited_long_enough_goes_even_if_another_topic_never_answers() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS, max_wait_s=1.0)
    merger.add(3, "service", 20, arrived_at=0.0, item="complaint")
    assert list(merger.release(3, now=0.99, read_to_end=lambda topic: False)) == []
    assert list(merger.release(3, now=1.0, read_to_end=lambda topic: False)) == ["complaint"]


def test_interleaved_topics_come_out_in_timestamp_order_and_partitions_do_not_wait_for_each_other() -> None:
    merger: PartitionMerger[int] = PartitionMerger(TOPICS)
    for timestamp in (1, 4, 5):
        merger.add(0, "sales", timestamp, 0.0, timestamp)
    for timestamp in (2, 3, 6):
        merger.add(0, "service", timestamp, 0.0, timestamp)
    merger.add(1, "sales", 100, 0.0, 100)
    assert list(merger.release(0, now=0.0, read_to_end=lambda topic: True)) == [1, 2, 3, 4, 5, 6]
    assert list(merger.release(1, now=0.0, read_to_end=lambda topic: topic == "service")) == [100]
