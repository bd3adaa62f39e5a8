"""The live pipeline's rules without a broker: what a restarted worker does with redelivered records."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from streams import codec
from streams.app.correlator import Correlator, Produced, SourceRecord
from streams.contract import TOPIC_OF
from streams.simulate import simulate_events

START_MS = 1_780_000_000_000
DAY_MS = 86_400_000
NOW_MS = START_MS + 60 * DAY_MS


def _records(days: int, customers: int = 6) -> list[SourceRecord]:
    """A simulated company on one partition, plus one record that is not Avro, with Kafka offsets."""
    offsets: dict[str, int] = defaultdict(int)
    records = []

    def add(topic: str, key: bytes | None, value: bytes) -> None:
        records.append(SourceRecord(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1

    for n, event in enumerate(simulate_events(customers=customers, days=days, seed=5, start_ms=START_MS)):
        key = event["customer_id"].encode() if event.get("customer_id") else None
        add(TOPIC_OF[event["type"]], key, codec.encode(event))
        if n == 40:
            add("sales.events", b"cust-x", b"not avro at all")
    return records


def _run(correlator: Correlator, records: list[SourceRecord], store: dict[bytes, bytes]) -> Produced:
    """Handle records and persist the state, as the worker does after publishing each batch."""
    produced = Produced()
    for record in records:
        correlator.handle(record, produced)
    for _, key, value in correlator.take_state_changes():
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value
    return produced


def _alignment(produced: list[Produced]) -> dict[str | None, list[dict[str, Any]]]:
    """Per customer, first occurrence of each alignment id, in order (consumers de-duplicate by id)."""
    seen: set[str] = set()
    grouped: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for batch in produced:
        for _, value in batch.alignment:
            event = codec.decode_alignment(value)
            if event["alignment_id"] not in seen:
                seen.add(event["alignment_id"])
                grouped[event["customer_id"]].append(event)
    return grouped


def _correlator(store: dict[bytes, bytes]) -> Correlator:
    return Correlator(store, wall_clock_ms=lambda: NOW_MS)


def test_a_restart_that_replays_records_older_than_the_dedupe_window_changes_no_output() -> None:
    records = _records(days=30)  # far longer than the engine's 7-day de-duplication window
    uninterrupted = _run(_correlator({}), records, {})

    store: dict[bytes, bytes] = {}
    applied = len(records) * 3 // 4
    before_crash = _run(_correlator(store), records[:applied], store)
    # The state reached the changelog but no offset was committed: everything is delivered again.
    after_restart = _run(_correlator(store), records, store)

    assert _alignment([before_crash, after_restart]) == _alignment([uninterrupted])
    assert len(before_crash.dead_letters) + len(after_restart.dead_letters) == 1
    assert [codec.decode_dead_letter(v)["reason"] for _, v in uninterrupted.dead_letters] == ["not_avro"]


def test_a_restarted_correlator_goes_on_from_its_stored_state_as_if_never_stopped() -> None:
    records = _records(days=10)
    store: dict[bytes, bytes] = {}
    first = _run(_correlator(store), records[:100], store)
    restarted = _correlator(store)
    redelivered = _run(restarted, records[90:100], store)
    rest = _run(restarted, records[100:], store)
    assert redelivered.alignment == [] and redelivered.dead_letters == []
    assert _alignment([first, rest]) == _alignment([_run(_correlator({}), records, {})])


def _changes(correlator: Correlator, records: list[SourceRecord]) -> tuple[Produced, list[Any]]:
    produced = Produced()
    for record in records:
        correlator.handle(record, produced)
    return produced, list(correlator.take_state_changes())


def _write(store: dict[bytes, bytes], changes: list[Any]) -> None:
    for _, key, value in changes:
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value


def test_a_crash_in_the_middle_of_a_batchs_state_write_changes_no_output() -> None:
    """kill -9 while a batch's changelog records are being written: only some of them land, no offset
    is committed, and the whole batch comes again. The restarted worker must publish what an
    uninterrupted one would: no event lost, none with another id, cause or order. (Without the journal,
    a stockout re-applied over ledgers that already hold a later order put that order at risk.)"""
    records = _records(days=30, customers=300)
    batch = 1500
    expected = _alignment([_run(_correlator({}), records, {})])
    crashes = 0
    store: dict[bytes, bytes] = {}
    correlator = _correlator(store)
    before: list[Produced] = []
    for start in range(0, len(records) - batch, batch):
        produced, changes = _changes(correlator, records[start : start + batch])
        published = [*before, produced]  # the outputs reach Kafka before the state is written
        ledgers_written = next(n for n, (_, key, _) in enumerate(changes) if key.startswith((b"p:", b"o:")))
        for written in sorted({1, len(changes) // 2, ledgers_written, len(changes) - 1}):
            crashed_store = dict(store)
            _write(crashed_store, changes[:written])
            restarted = _correlator(crashed_store)
            after = [_run(restarted, records[start : start + batch], crashed_store)]
            after.append(_run(_correlator(crashed_store), records[start + batch :], crashed_store))
            assert _alignment([*published, *after]) == expected, (start, written, len(changes))
            crashes += 1
        _write(store, changes)
        before.append(produced)
    assert crashes >= 20


def test_a_later_batch_with_one_change_is_not_undone_by_the_journal_before_it() -> None:
    records = _records(days=10)
    store: dict[bytes, bytes] = {}
    correlator = _correlator(store)
    _run(correlator, records[: len(records) // 2], store)  # many changes, journaled; promises still open
    clock = correlator.clock(0)
    assert clock is not None
    # The idle clock, an hour at a time, until one deadline changes one ledger and nothing else.
    for hours in range(1, 24 * 30):
        produced = Produced()
        correlator.advance(0, clock + hours * 3_600_000 + 5 * 60_000, produced)
        changes = list(correlator.take_state_changes())
        _write(store, changes)
        if produced.alignment and sum(not key.startswith(b"j:") for _, key, _ in changes) == 1:
            break
    else:
        raise AssertionError("no deadline changed a single ledger")
    restarted = _correlator(store)
    again = Produced()
    restarted.advance(0, clock + hours * 3_600_000 + 5 * 60_000, again)
    assert again.alignment == []  # the store holds what fired: nothing fires twice


def _ticket(event_id: str, customer: str, at: int) -> dict[str, Any]:
    return {
        "type": "TicketOpened",
        "event_id": event_id,
        "customer_id": customer,
        "occurred_at": at,
        "source": "zendesk",
        "ticket_id": f"t-{event_id}",
        "category": "OTHER",
        "order_id": None,
        "deal_id": None,
        "text": None,
    }


def test_an_event_from_a_producer_clock_ahead_is_dead_lettered_and_moves_no_clock() -> None:
    """SPEC §5: a record 23 h ahead must not break another customer's promise due in 10 h."""
    correlator = Correlator({}, wall_clock_ms=lambda: NOW_MS)
    produced = Produced()
    records = [
        _ticket("due-in-10h", "patient", NOW_MS - 14 * 3_600_000),  # first reply due in 10 h
        _ticket("skewed", "other", NOW_MS + 23 * 3_600_000),
        _ticket("within-skew", "third", NOW_MS + 4 * 60_000),  # inside the 5-minute default
    ]
    for offset, event in enumerate(records):
        value = codec.encode(event)
        correlator.handle(
            SourceRecord("service.events", 0, offset, event["customer_id"].encode(), value), produced
        )
    (dead_letter,) = [codec.decode_dead_letter(value) for _, value in produced.dead_letters]
    assert (dead_letter["reason"], dead_letter["offset"]) == ("timestamp_in_future", 1)
    assert correlator.clock(0) == NOW_MS + 4 * 60_000
    correlator.advance(0, NOW_MS, produced)
    broken = [codec.decode_alignment(v) for _, v in produced.alignment]
    assert [e["type"] for e in broken if e["type"] == "PROMISE_BROKEN"] == []


def test_a_conflicting_duplicate_is_dead_lettered_counted_and_changes_nothing() -> None:
    from prometheus_client import REGISTRY

    def count(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    correlator = Correlator({}, wall_clock_ms=lambda: NOW_MS)
    produced = Produced()
    first = _ticket("same-id", "c-dup", NOW_MS - 3_600_000)
    conflicting = {**first, "category": "LATE"}
    before = count("ledger_dead_letters_total", {"reason": "conflicting_duplicate"})
    redelivered = count("ledger_redelivered_events_total", {"topic": "service.events"})
    for offset, event in enumerate([first, first, conflicting]):
        value = codec.encode(event)
        correlator.handle(SourceRecord("service.events", 0, offset, b"c-dup", value), produced)
    (dead_letter,) = [codec.decode_dead_letter(value) for _, value in produced.dead_letters]
    assert (dead_letter["reason"], dead_letter["offset"]) == ("conflicting_duplicate", 2)
    assert dead_letter["value"] == codec.encode(conflicting) and "same-id" in dead_letter["detail"]
    assert count("ledger_dead_letters_total", {"reason": "conflicting_duplicate"}) == before + 1
    assert count("ledger_redelivered_events_total", {"topic": "service.events"}) == redelivered + 1
    correlator.advance(0, NOW_MS, produced)
    complaints = [codec.decode_alignment(v) for _, v in produced.alignment]
    assert [e["reason"] for e in complaints if e["type"] == "COMPLAINT_ATTRIBUTED"] == ["OTHER"]
