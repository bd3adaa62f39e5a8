"""A partition's topics merge into publication order, whatever order the consumer fetched them in."""

from __future__ import annotations

from streams.app.merge import Fetched, PartitionMerger

END, BEHIND, UNKNOWN = Fetched.TO_THE_END, Fetched.BEHIND, Fetched.UNKNOWN

TOPICS = ("sales", "service")


def test_a_record_waits_for_a_topic_that_may_still_hold_an_earlier_one() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS, max_wait_s=1.0)
    merger.add(0, "service", 20, arrived_at=0.0, item="complaint")
    assert list(merger.release(0, now=0.1, fetched=lambda topic: UNKNOWN)) == []
    merger.add(0, "sales", 10, arrived_at=0.2, item="commitment")
    assert list(merger.release(0, now=0.2, fetched=lambda topic: UNKNOWN)) == ["commitment"]
    # the sales partition is now empty: the complaint goes once sales is known to be read to its end
    assert list(merger.release(0, now=0.3, fetched=lambda topic: UNKNOWN)) == []
    assert list(merger.release(0, now=0.3, fetched=lambda topic: END)) == ["complaint"]
    assert merger.is_empty(0)


def test_a_head_waits_at_most_max_wait_for_a_topic_whose_end_is_unknown() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS, max_wait_s=1.0)
    merger.add(3, "service", 20, arrived_at=0.0, item="complaint")
    assert list(merger.release(3, now=0.99, fetched=lambda topic: UNKNOWN)) == []
    assert list(merger.release(3, now=1.0, fetched=lambda topic: UNKNOWN)) == ["complaint"]


def test_a_head_always_waits_for_a_topic_known_to_hold_unfetched_records() -> None:
    merger: PartitionMerger[str] = PartitionMerger(TOPICS, max_wait_s=1.0)
    merger.add(3, "service", 20, arrived_at=0.0, item="complaint")
    assert list(merger.release(3, now=60.0, fetched=lambda topic: BEHIND)) == []
    merger.add(3, "sales", 10, arrived_at=60.0, item="commitment")
    assert list(merger.release(3, now=60.0, fetched=lambda topic: BEHIND)) == ["commitment"]


def test_interleaved_topics_come_out_in_timestamp_order_and_partitions_do_not_wait_for_each_other() -> None:
    merger: PartitionMerger[int] = PartitionMerger(TOPICS)
    for timestamp in (1, 4, 5):
        merger.add(0, "sales", timestamp, 0.0, timestamp)
    for timestamp in (2, 3, 6):
        merger.add(0, "service", timestamp, 0.0, timestamp)
    merger.add(1, "sales", 100, 0.0, 100)
    assert list(merger.release(0, now=0.0, fetched=lambda topic: END)) == [1, 2, 3, 4, 5, 6]
    assert list(merger.release(1, now=0.0, fetched=lambda topic: END if topic == "service" else BEHIND)) == [
        100
    ]
