"""Replay runs the worker's topology (streams/topology.py): customers where Kafka puts their keys, one
engine per partition, catalog outputs once."""

from __future__ import annotations

from collections import Counter

from kafka.partitioner import DefaultPartitioner

from streams.contract import parse_event
from streams.simulate import DEFAULT_START_MS, simulate_events
from streams.topology import PartitionedEngines, partition_of


class _SixPartitions:
    def topics(self) -> set[str]:
        return {"sales.events"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(6))

    available_partitions_for_topic = partitions_for_topic


def test_customers_go_where_the_publishers_partitioner_puts_their_key() -> None:
    partitioner = DefaultPartitioner()
    for customer in ("cust-00001", "cust-00390", "c", "ünïcode-customer"):
        key = customer.encode()
        placed = partitioner.partition("sales.events", key, key, None, None, _SixPartitions())
        assert partition_of(customer, 6) == placed


def test_every_alignment_event_comes_out_once_though_every_partition_learns_the_catalog() -> None:
    engines = PartitionedEngines(partitions=6)
    out = []
    for decoded in simulate_events(customers=120, days=20, seed=4, start_ms=DEFAULT_START_MS):
        out.extend(engines.process(parse_event(decoded)))
    out.extend(engines.advance_to(DEFAULT_START_MS + 90 * 86_400_000))
    counts = Counter(e.alignment_id for e in out)
    assert sum(1 for e in out if e.type == "CONTRADICTION") > 0
    assert [key for key, n in counts.items() if n > 1] == []
