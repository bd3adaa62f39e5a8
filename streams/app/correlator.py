"""Raw Kafka records in; what to publish and what to persist out. One engine per input partition.

No Faust here, so every rule of the live pipeline is tested without a broker; ``worker.py`` only
moves bytes between this and Kafka. Why per partition: a customer's events are co-partitioned
(keyed by customer_id), so partition *p*'s engine sees every event of its customers in order, and its
event-time clock is the largest ``occurred_at`` seen on *p* (SPEC §5).

Records at or past an offset the state already reflects are skipped, not re-applied: the state
(changelog) is written before offsets are committed, so after a crash it runs ahead of them, and the
engine's own de-duplication remembers event ids only for ``dedupe_window_hours`` of event time, which
a backlog replayed at full speed covers in seconds.

Catalog facts (claims, stock) carry no customer: publishers send them to every partition (see
``streams.publish``), so each engine applies them at the same place in its own order. Their
customer-less outputs (CONTRADICTION) are published by partition 0's engine only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter, Gauge

from streams import codec
from streams.app.journal import completed_journal, is_journal_key, journal_records
from streams.app.parts import Change, is_head, is_part_key, joined, part_count, stored_records
from streams.contract import InputEvent, InvalidEvent, parse_event
from streams.contract.events import GLOBAL_EVENT_TYPES
from streams.engine import (
    CATALOG_KEY,
    AlignmentEvent,
    Catalog,
    ConflictingDuplicate,
    CustomerLedger,
    EngineConfig,
    PromiseEngine,
    alert_for,
)
from streams.engine.ledger import OPEN

EVENTS_IN = Counter("ledger_events_in_total", "Input events applied to the engine", ["topic"])
DEAD_LETTERS = Counter("ledger_dead_letters_total", "Records sent to the dead-letter topic", ["reason"])
ALIGNMENT_OUT = Counter("ledger_alignment_events_total", "Alignment events published", ["type"])
ALERTS_OUT = Counter("ledger_alerts_total", "Alerts published", ["severity"])
REDELIVERED = Counter(
    "ledger_redelivered_events_total", "Events taken again with the same content (changed nothing)", ["topic"]
)
ALREADY_APPLIED = Counter(
    "ledger_records_already_applied_total", "Redelivered records the state already reflects", ["topic"]
)
EVENT_CLOCK = Gauge("ledger_event_clock_seconds", "Event-time clock of the partition's engine", ["partition"])

CATALOG_PARTITION = 0
_LEDGER_PREFIX = b"c:"
_CATALOG_PREFIX = b"p:"
_PROGRESS_PREFIX = b"o:"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class Produced:
    """Records to publish, as (key, Avro value) pairs, in the order they were made."""

    alignment: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Limits:
    """Input the live clock must never trust (SPEC §5 "producer skew"): an event stamped ahead of wall
    time by more than this would move its partition's clock and break other customers' promises."""

    max_future_ms: int = 5 * 60_000

    @classmethod
    def for_skew(cls, max_skew_s: float | None, config: EngineConfig) -> Limits:
        """The configured skew, by default the engine's grace period."""
        return cls(config.grace_ms if max_skew_s is None else int(max_skew_s * 1000))


class _TrackedLedgers(dict[str, Any]):
    """The engine writes every changed ledger back; remembering which ones lets us persist only those."""

    __slots__ = ("dirty",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.dirty: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.dirty.add(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.dirty.add(key)


@dataclass(slots=True)
class _Partition:
    engine: PromiseEngine
    ledgers: _TrackedLedgers
    catalogs: _TrackedLedgers
    # Per input topic, the offset after the last record applied on this partition.
    applied_to: dict[str, int]
    progressed: bool = False
    #: records of the stored journal that a crash may have kept from the store (see _load)
    owed: list[Change] = field(default_factory=list)
    #: key -> how many parts its stored value has, for values stored in parts (parts.py)
    parts: dict[bytes, int] = field(default_factory=dict)


class Correlator:
    """Drives the engines of the partitions this worker owns, with their state in ``store``.

    ``store`` is a mapping of bytes to bytes (a Faust table's storage in the worker, a dict in tests).
    Nothing is written to it while records are handled: ``take_state_changes()`` hands the changes
    over, so the worker can publish the outputs first and persist the state after them.
    """

    def __init__(
        self,
        store: MutableMapping[bytes, bytes],
        config: EngineConfig | None = None,
        *,
        wall_clock_ms: Callable[[], int],
        limits: Limits = Limits(),
    ) -> None:
        self._store = store
        self._config = config or EngineConfig()
        self._wall_clock_ms = wall_clock_ms
        self._limits = limits
        self._partitions: dict[int, _Partition] = {}

    # -- records -------------------------------------------------------------------------------

    def handle(self, record: SourceRecord, produced: Produced) -> None:
        partition = self._partition(record.partition)
        if record.offset < partition.applied_to.get(record.topic, 0):
            ALREADY_APPLIED.labels(record.topic).inc()
            return
        partition.applied_to[record.topic] = record.offset + 1
        partition.progressed = True
        event = self._admit(record, produced)
        if event is None:
            return
        engine = partition.engine
        redelivered = engine.redelivered
        try:
            outputs = engine.process(event)
        except ConflictingDuplicate as conflict:
            self._dead_letter(record, "conflicting_duplicate", str(conflict), produced)
            return
        self._publish(record.partition, outputs, produced)
        if engine.redelivered != redelivered:
            REDELIVERED.labels(record.topic).inc()
        else:
            EVENTS_IN.labels(record.topic).inc()

    def _admit(self, record: SourceRecord, produced: Produced) -> InputEvent | None:
        """The event in the record, or None once the record is in the dead-letter output."""
        try:
            event = parse_event(codec.decode(record.value or b""), self._config.limits)
        except codec.DecodeError as error:
            return self._dead_letter(record, error.reason, error.detail, produced)
        except InvalidEvent as error:
            return self._dead_letter(record, "invalid_event", str(error), produced)
        if not isinstance(event, GLOBAL_EVENT_TYPES):
            if not record.key:
                return self._dead_letter(
                    record, "missing_key", "customer events are keyed by customer_id", produced
                )
            if record.key != event.customer_id.encode():
                return self._dead_letter(
                    record, "key_mismatch", "key is not the event's customer_id", produced
                )
        ahead_ms = event.occurred_at - self._wall_clock_ms()
        if ahead_ms > self._limits.max_future_ms:
            # Not applied, so its event_id is not used up: redriven once its time has come, it counts.
            detail = f"occurred_at is {ahead_ms / 1000:.0f} s ahead of the worker's clock"
            return self._dead_letter(record, "timestamp_in_future", detail, produced)
        return event

    def advance(self, partition_number: int, wall_clock_ms: int, produced: Produced) -> None:
        """The idle clock: an idle, caught-up partition has all input up to wall time minus grace, so
        every deadline before that fires (SPEC §5). A partition that has seen no event keeps no clock."""
        partition = self._partition(partition_number)
        complete_until = wall_clock_ms - self._config.grace_ms
        if partition.engine.clock is not None and complete_until > partition.engine.clock:
            self._publish(partition_number, partition.engine.advance_to(complete_until), produced)

    def open_promises(self, partition_number: int) -> int:
        """Promises not yet ended on a partition (walks every ledger: call it rarely)."""
        partition = self._partitions.get(partition_number)
        if partition is None:
            return 0
        return sum(
            promise.state == OPEN
            for ledger in partition.ledgers.values()
            for promise in ledger.promises.values()
        )

    def applied_to(self, partition_number: int, topic: str) -> int | None:
        """The offset after the last record of ``topic`` that the partition's state reflects."""
        return self._partition(partition_number).applied_to.get(topic)

    def clock(self, partition_number: int) -> int | None:
        return self._partition(partition_number).engine.clock

    # -- state ---------------------------------------------------------------------------------

    def take_state_changes(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        """(partition, key, value or None for a delete) for everything changed since the last call.

        A partition's changes come after their journal (``journal.py``), so a crash among them is
        completed when the partition is loaded again, instead of leaving some ledgers a batch ahead.
        No record is longer than ``parts.PART_BYTES`` plus its key and a few bytes: a longer value
        goes in parts, and the journal cuts its chunks at that size.
        """
        for number, partition in self._partitions.items():
            # What the stored journal completes goes first, and outside a new journal: until every
            # record of it has landed, that journal is their only copy, and a new one overwrites it.
            owed, partition.owed = partition.owed, []
            for key, value in owed:
                yield number, key, value
            changes = [
                record
                for key, value in self._changes(number, partition)
                for record in self._stored(number, partition, key, value)
            ]
            # Even a lone change gets one: a journal left from an earlier batch would otherwise be laid
            # over it when the partition is loaded.
            if changes:
                for key, value in journal_records(number, changes):
                    yield number, key, value
            for key, value in changes:
                yield number, key, value
            clock = partition.engine.clock
            if clock is not None:
                EVENT_CLOCK.labels(str(number)).set(clock / 1000)

    @staticmethod
    def _stored(number: int, partition: _Partition, key: bytes, value: bytes | None) -> list[Change]:
        """The records that write one changed value; remembers how many parts it has now."""
        stored_parts = partition.parts.pop(key, 0)
        parts = part_count(value)
        if parts:
            partition.parts[key] = parts
        elif not stored_parts:
            return [(key, value)]  # most values: no part before or now
        return stored_records(number, key, value, stored_parts)

    @staticmethod
    def _changes(number: int, partition: _Partition) -> Iterator[Change]:
        for customer_id in partition.ledgers.dirty:
            ledger = partition.ledgers.get(customer_id)
            value = None if ledger is None else orjson.dumps({"p": number, "ledger": ledger.to_dict()})
            yield _LEDGER_PREFIX + customer_id.encode(), value
        partition.ledgers.dirty.clear()
        if partition.catalogs.dirty:
            catalog = partition.catalogs[CATALOG_KEY]
            yield (
                _CATALOG_PREFIX + str(number).encode(),
                orjson.dumps({"p": number, "catalog": catalog.to_dict()}),
            )
            partition.catalogs.dirty.clear()
        if partition.progressed:
            # Last, so that whoever reads these offsets back also finds the state they stand for.
            yield (
                _PROGRESS_PREFIX + str(number).encode(),
                orjson.dumps({"p": number, "applied_to": partition.applied_to}),
            )
            partition.progressed = False

    def forget(self, partition_numbers: set[int]) -> None:
        """Partitions taken away by a rebalance; if they come back, they are rebuilt from the store."""
        for number in partition_numbers:
            self._partitions.pop(number, None)

    def _partition(self, number: int) -> _Partition:
        partition = self._partitions.get(number)
        if partition is None:
            partition = self._load(number)
            self._partitions[number] = partition
        return partition

    def _load(self, number: int) -> _Partition:
        records: dict[bytes, Any] = {}
        for key, value in self._store.items():
            if is_journal_key(key) or is_part_key(key):
                continue
            record = orjson.loads(value)
            if record["p"] == number:
                records[key] = record
        # What a crash kept from the store is still owed to it: the next write repeats those records.
        owed = completed_journal(self._store, number)
        laid = dict(owed)  # the last of each key's records in the journal
        for key, value in laid.items():
            if not is_part_key(key):
                records[key] = None if value is None else orjson.loads(value)

        def stored(key: bytes) -> bytes | None:
            return laid[key] if key in laid else self._store.get(key)

        ledgers, catalogs = _TrackedLedgers(), _TrackedLedgers()
        parts: dict[bytes, int] = {}
        applied_to: dict[str, int] = {}
        for key, record in records.items():
            if record is None:
                continue
            if is_head(record):
                parts[key] = record["parts"]
                record = orjson.loads(joined(key, record, stored))
            if key.startswith(_LEDGER_PREFIX):
                customer_id = key[len(_LEDGER_PREFIX) :].decode()
                dict.__setitem__(ledgers, customer_id, CustomerLedger.from_dict(record["ledger"]))
            elif key.startswith(_CATALOG_PREFIX):
                dict.__setitem__(catalogs, CATALOG_KEY, Catalog.from_dict(record["catalog"]))
            elif key.startswith(_PROGRESS_PREFIX):
                applied_to = record["applied_to"]
        # The engine derives its clock, deadline queue and stockout index from these records.
        engine = PromiseEngine(self._config, ledgers=ledgers, catalogs=catalogs)
        return _Partition(engine, ledgers, catalogs, applied_to, owed=owed, parts=parts)

    # -- outputs -------------------------------------------------------------------------------

    def _publish(self, partition: int, events: list[AlignmentEvent], produced: Produced) -> None:
        for event in events:
            if event.customer_id is None and partition != CATALOG_PARTITION:
                continue  # the same catalog output comes from partition 0's engine
            body = event.to_dict()
            key = (event.customer_id or event.claim_id or "").encode() or None
            produced.alignment.append((key, codec.encode_alignment(body)))
            ALIGNMENT_OUT.labels(event.type).inc()
            alert = alert_for(event, self._customer_value(partition, event.customer_id))
            if alert is not None:
                produced.alerts.append((key, codec.encode_alert(alert.to_dict())))
                ALERTS_OUT.labels(alert.severity).inc()

    def _customer_value(self, partition: int, customer_id: str | None) -> float:
        return self._partitions[partition].engine.customer_value(customer_id) if customer_id else 0.0

    def _dead_letter(self, record: SourceRecord, reason: str, detail: str, produced: Produced) -> None:
        """Publish the record, untouched, with why it was refused; always returns None."""
        dead_letter = {
            "reason": reason,
            "detail": detail[:1000],
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key,
            "value": record.value,
            "dead_lettered_at": self._wall_clock_ms(),
        }
        produced.dead_letters.append((record.key, codec.encode_dead_letter(dead_letter)))
        DEAD_LETTERS.labels(reason).inc()
