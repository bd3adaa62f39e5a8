"""The live pipeline's topology without Kafka: one engine per partition, customers placed as Kafka's
default partitioner places their keys, catalog facts to every partition.

The engine's clock is per partition in the worker (SPEC §5: the largest ``occurred_at`` seen on *p*), and
whether an event arrives late depends on that clock. A replay with one engine for everyone would judge
lateness against every customer's events, and a customer whose event came 20 minutes late could read
differently than it does live. ``replay`` and ``explain --from`` therefore run this topology, with the
worker's partition count (``PL_PARTITIONS``), so that they tell what the live pipeline tells.
"""

from __future__ import annotations

from collections.abc import Callable

from kafka.partitioner import murmur2

from streams.contract import InputEvent
from streams.engine import AlignmentEvent, EngineConfig, PromiseEngine

#: the partition whose engine publishes catalog outputs (CONTRADICTION), as in the worker
CATALOG_PARTITION = 0


def partition_of(customer_id: str, partitions: int) -> int:
    """Kafka's default partitioner (kafka-python and the Java client agree) for a customer's key."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


class PartitionedEngines:
    """``PromiseEngine``'s surface over one engine per partition."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        partitions: int = 1,
        make_engine: Callable[[EngineConfig | None], PromiseEngine] = PromiseEngine,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.config = config or EngineConfig()
        self.partitions = partitions
        self._engines = [make_engine(self.config) for _ in range(partitions)]
        self._placed: dict[str, PromiseEngine] = {}

    def engine_of(self, customer_id: str) -> PromiseEngine:
        engine = self._placed.get(customer_id)
        if engine is None:
            engine = self._engines[partition_of(customer_id, self.partitions)]
            self._placed[customer_id] = engine
        return engine

    def process(self, event: InputEvent) -> list[AlignmentEvent]:
        customer_id = event.customer_id
        if customer_id is None:
            return self._from_every(lambda engine: engine.process(event))
        engine = self.engine_of(customer_id)
        out = engine.process(event)
        if engine is self._engines[CATALOG_PARTITION] or all(e.customer_id is not None for e in out):
            return out
        # A customer's event can release a held catalog fact: its outputs come from one partition only.
        return [e for e in out if e.customer_id is not None]

    def advance_to(self, moment: int) -> list[AlignmentEvent]:
        return self._from_every(lambda engine: engine.advance_to(moment))

    def drain(self) -> list[AlignmentEvent]:
        return self._from_every(PromiseEngine.drain)

    def customer_value(self, customer_id: str) -> float:
        return self.engine_of(customer_id).customer_value(customer_id)

    def _from_every(self, call: Callable[[PromiseEngine], list[AlignmentEvent]]) -> list[AlignmentEvent]:
        if len(self._engines) == 1:
            return call(self._engines[0])
        out: list[AlignmentEvent] = []
        for number, engine in enumerate(self._engines):
            for event in call(engine):
                # Every partition learns the catalog; its customer-less outputs come from one of them.
                if event.customer_id is not None or number == CATALOG_PARTITION:
                    out.append(event)
        return out
