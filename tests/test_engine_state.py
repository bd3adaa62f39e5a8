"""The engine's state: per-customer records written back to a store, restart, bounded memory."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, MutableMapping
from typing import Any, Generic, TypeVar

from streams.contract import AgentReplied, TicketOpened, parse_event
from streams.engine import CATALOG_KEY, Catalog, CustomerLedger, PromiseEngine
from streams.simulate import DEFAULT_START_MS, simulate_events

DAY = 86_400_000
Record = TypeVar("Record", CustomerLedger, Catalog)


class JsonStore(MutableMapping[str, Record], Generic[Record]):
    """Holds only JSON text, like a changelogged table: a change not written back is lost."""

    def __init__(self, record_type: type[Record]) -> None:
        self._type = record_type
        self._data: dict[str, str] = {}
        self.writes = 0

    def __getitem__(self, key: str) -> Record:
        return self._type.from_dict(json.loads(self._data[key]))

    def __setitem__(self, key: str, value: Record) -> None:
        self.writes += 1
        self._data[key] = json.dumps(value.to_dict())

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def company(days: int = 20) -> list[Any]:
    return [parse_event(d) for d in simulate_events(customers=30, days=days, seed=3)]


def run(engine: PromiseEngine, events: list[Any]) -> list[dict[str, Any]]:
    return [out.to_dict() for event in events for out in engine.process(event)]


def test_every_change_is_written_back_to_the_store() -> None:
    events = company()
    until = DEFAULT_START_MS + 60 * DAY
    in_memory = PromiseEngine()
    expected = run(in_memory, events) + [e.to_dict() for e in in_memory.advance_to(until)]
    ledgers: JsonStore[CustomerLedger] = JsonStore(CustomerLedger)
    catalogs: JsonStore[Catalog] = JsonStore(Catalog)
    stored = PromiseEngine(ledgers=ledgers, catalogs=catalogs)
    assert run(stored, events) + [e.to_dict() for e in stored.advance_to(until)] == expected
    assert CATALOG_KEY in catalogs and ledgers.writes > 0


def test_restart_from_stored_records_gives_the_same_output() -> None:
    events = company()
    half = len(events) // 2
    until = DEFAULT_START_MS + 60 * DAY
    uninterrupted = PromiseEngine()
    expected = run(uninterrupted, events) + [e.to_dict() for e in uninterrupted.advance_to(until)]
    first = PromiseEngine()
    before = run(first, events[:half])
    ledgers = {
        key: CustomerLedger.from_dict(json.loads(json.dumps(v.to_dict()))) for key, v in first.ledgers.items()
    }
    catalogs = {CATALOG_KEY: Catalog.from_dict(json.loads(json.dumps(first.catalog.to_dict())))}
    restarted = PromiseEngine(ledgers=ledgers, catalogs=catalogs)
    assert restarted.clock == first.clock
    after = run(restarted, events[half:]) + [e.to_dict() for e in restarted.advance_to(until)]
    assert before + after == expected


def test_ended_promises_leave_after_the_lookback_and_empty_ledgers_go() -> None:
    engine = PromiseEngine()
    opened = DEFAULT_START_MS
    engine.process(TicketOpened("e1", "a", opened, "zendesk", "t1", "OTHER", None, None, None))
    engine.process(AgentReplied("e2", "a", opened + 3_600_000, "zendesk", "t1", "Gus", "Hello"))
    assert "t1:first-reply" in engine.ledgers["a"].promises
    engine.advance_to(opened + 3_600_000 + 29 * DAY)
    assert "t1:first-reply" in engine.ledgers["a"].promises  # still inside the 30-day lookback
    engine.advance_to(opened + 3_600_000 + 30 * DAY + 1)
    assert "a" not in engine.ledgers


def test_state_stays_bounded_over_a_long_run() -> None:
    engine = PromiseEngine()
    events = [parse_event(d) for d in simulate_events(customers=20, days=90, seed=5)]
    opened = 0
    for event in events:
        opened += sum(1 for out in engine.process(event) if out.type == "PROMISE_OPENED")
    engine.advance_to(events[-1].occurred_at + 45 * DAY)
    held = sum(len(ledger.promises) for ledger in engine.ledgers.values())
    seen = sum(len(ledger.seen) for ledger in engine.ledgers.values())
    assert opened > 300 and held == 0 and seen == 0


def test_ledgers_are_json_round_trippable() -> None:
    engine = PromiseEngine()
    run(engine, company(days=10))
    for ledger in itertools.islice(engine.ledgers.values(), 10):
        data = json.loads(json.dumps(ledger.to_dict()))
        assert CustomerLedger.from_dict(data).to_dict() == ledger.to_dict()


def test_the_same_event_id_with_other_content_is_a_conflict_and_the_first_stands() -> None:
    """SPEC §3: a redelivery changes nothing; a conflicting duplicate is refused, the first stands."""
    from dataclasses import replace

    import pytest

    from streams.engine import ConflictingDuplicate

    engine = PromiseEngine()
    first = TicketOpened("e1", "a", DEFAULT_START_MS, "zendesk", "t1", "OTHER", None, None, None)
    engine.process(first)
    assert engine.process(first) == [] and engine.redelivered == 1
    with pytest.raises(ConflictingDuplicate, match="'e1'"):
        engine.process(replace(first, category="LATE"))
    catalog_fact = parse_event(
        {
            "type": "StockChanged",
            "event_id": "s1",
            "customer_id": None,
            "occurred_at": DEFAULT_START_MS,
            "source": "erp",
            "product": "lamp",
            "on_hand": 3,
        }
    )
    engine.process(catalog_fact)
    with pytest.raises(ConflictingDuplicate):
        engine.process(replace(catalog_fact, on_hand=0))
    opened = [e for e in engine.drain() if e.type == "COMPLAINT_ATTRIBUTED"]
    assert [e.reason for e in opened] == ["OTHER"] and engine.catalog.stock == {"lamp": 3}


def test_state_written_before_fingerprints_were_kept_still_dedupes() -> None:
    ledger = CustomerLedger.from_dict(
        {
            "customer_id": "a",
            "promises": [],
            "orders": {},
            "tickets": [],
            "exposures": {},
            "value": 0.0,
            "rep_name": None,
            "seen": {"e1": DEFAULT_START_MS},
            "compact_at": None,
            "last_at": DEFAULT_START_MS,
        }
    )
    engine = PromiseEngine(ledgers={"a": ledger})
    again = TicketOpened("e1", "a", DEFAULT_START_MS, "zendesk", "t1", "LATE", None, None, None)
    assert engine.process(again) == [] and engine.redelivered == 1
