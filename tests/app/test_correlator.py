"""The live pipeline's rules without a broker: what a restarted worker does with redelivered records."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from streams import codec
from streams.app.correlator import Correlator, Produced, SourceRecord
from streams.app.parts import PART_BYTES, is_part_key
from streams.contract import TOPIC_OF
from streams.simulate import simulate_events

START_MS = 1_780_000_000_000
DAY_MS = 86_400_000
NOW_MS = START_MS + 60 * DAY_MS


def _records(days: int, customers: int = 6, extra: Iterable[dict[str, Any]] = ()) -> list[SourceRecord]:
    """A simulated company on one partition, plus one record that is not Avro, with Kafka offsets;
    ``extra`` events (in time order) go among the company's at their time."""
    offsets: dict[str, int] = defaultdict(int)
    records = []

    def add(topic: str, key: bytes | None, value: bytes) -> None:
        records.append(SourceRecord(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1

    company = simulate_events(customers=customers, days=days, seed=5, start_ms=START_MS)
    events = heapq.merge(company, extra, key=lambda event: event["occurred_at"])
    for n, event in enumerate(events):
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


# -- a customer whose state is larger than a record may be ------------------------------------------

#: what a record holds besides its value part: a key of a 256-character customer id and a prefix
RECORD_OVERHEAD = 300


def _commitments(
    customer: str, count: int, at: int, features: int, every_ms: int = 10_000, first: int = 0
) -> list[Any]:
    """``count`` valid commitments (SPEC §3 limits) of one customer with long texts, ``every_ms``
    apart, all due a day after the last one; numbered from ``first``."""
    due = at + count * every_ms + DAY_MS
    return [
        {
            "type": "CommitmentMade",
            "event_id": f"{customer[:40]}-{n}-".ljust(256, "e"),
            "customer_id": customer,
            "occurred_at": at + (n - first) * every_ms,
            "source": "salesforce",
            "commitment_id": f"{customer[:40]}-{n}-".ljust(256, "c"),
            "deal_id": f"{customer[:40]}-deal-{n}-".ljust(256, "d"),
            "rep_name": None,
            "product": "lamp".ljust(256, "p"),
            "quantity": 2,
            "deliver_by": due,
            "unit_price": 49.0,
            "features": [f"feature {k} of {n} ".ljust(256, "f") for k in range(features)],
        }
        for n in range(first, first + count)
    ]


def _keyed(events: list[Any]) -> list[SourceRecord]:
    return [
        SourceRecord(TOPIC_OF[e["type"]], 0, n, e["customer_id"].encode(), codec.encode(e))
        for n, e in enumerate(events)
    ]


def test_a_customer_with_5000_open_promises_writes_no_record_larger_than_a_part() -> None:
    """One customer's ledger of many MiB: every changelog record stays under Kafka's 1 MiB default,
    and a worker restarted from those records goes on as if never stopped."""
    customer = "big-customer".ljust(256, "b")
    records = _keyed(_commitments(customer, 5_000, START_MS, features=3))
    store: dict[bytes, bytes] = {}
    correlator = _correlator(store)
    written: list[tuple[bytes, bytes | None]] = []
    for start in range(0, len(records), 1_000):
        _, changes = _changes(correlator, records[start : start + 1_000])
        _write(store, changes)
        written += [(key, value) for _, key, value in changes]
    assert correlator.open_promises(0) > 4_900  # the last few minutes' are held back for the grace
    biggest = max(len(key) + len(value or b"") for key, value in written)
    assert biggest <= PART_BYTES + RECORD_OVERHEAD
    assert sum(len(value) for key, value in store.items() if is_part_key(key)) > 6 * 2**20

    # The idle clock passes every due time: 5,000 breaks, from the stored state as from the live one.
    later = START_MS + 5_000 * 10_000 + 2 * DAY_MS
    live, restarted = Produced(), Produced()
    correlator.advance(0, later, live)
    _correlator(store).advance(0, later, restarted)
    assert restarted.alignment == live.alignment
    assert sum(codec.decode_alignment(v)["type"] == "PROMISE_BROKEN" for _, v in live.alignment) == 5_000


BIG = "big"


def _big_company() -> list[SourceRecord]:
    """A small company, and one customer whose ledger grows to several parts in its first days, and
    shrinks and is deleted as its broken promises are forgotten, 30 days after they broke."""
    early = _commitments(BIG, 60, START_MS + DAY_MS, features=100, every_ms=3_600_000)
    late = _commitments(BIG, 15, START_MS + 8 * DAY_MS, features=100, every_ms=3_600_000, first=60)
    return _records(days=45, customers=8, extra=early + late)


def _state(store: dict[bytes, bytes]) -> Any:
    """What a worker restarted on ``store`` holds: every ledger, the catalog, the offsets applied."""
    partition = _correlator(store)._partition(0)
    return (
        {customer: ledger.to_dict() for customer, ledger in partition.ledgers.items()},
        {key: catalog.to_dict() for key, catalog in partition.catalogs.items()},
        partition.applied_to,
    )


def _parts_of(store: dict[bytes, bytes], customer: str) -> int:
    return sum(is_part_key(key) and key.endswith(b":c:" + customer.encode()) for key in store)


def test_a_crash_at_any_record_of_a_batch_writing_a_ledger_in_parts_changes_no_state_or_output() -> None:
    """kill -9 after any one of a batch's records: journal chunks, a ledger's parts and head, the
    deletes of parts no longer used. A restarted worker holds the state of a batch boundary, never a
    ledger assembled from two versions, and publishes what an uninterrupted one would."""
    records = _big_company()
    batch = 60
    expected = _alignment([_run(_correlator({}), records, {})])
    store: dict[bytes, bytes] = {}
    correlator = _correlator(store)
    before: list[Produced] = []
    parts_seen = []
    for start in range(0, len(records), batch):
        state_before = _state(store)
        produced, changes = _changes(correlator, records[start : start + batch])
        header = next(n for n, (_, key, _) in enumerate(changes) if key == b"j:0")
        complete = dict(store)
        _write(complete, changes)
        state_after = _state(complete)
        # A crash outputs nothing the whole rerun does not: one cut in the journal, one in the parts.
        parts_at = [n for n, (_, key, _) in enumerate(changes) if is_part_key(key)]
        rerun_at = {header // 2, parts_at[len(parts_at) // 2]} if parts_at else {header // 2}
        for written in range(len(changes)):
            crashed_store = dict(store)
            _write(crashed_store, changes[:written])
            assert _state(crashed_store) == (state_after if written > header else state_before), written
            if written in rerun_at:
                after = [_run(_correlator(crashed_store), records[start:], crashed_store)]
                assert _alignment([*before, produced, *after]) == expected, (start, written)
        _write(store, changes)
        before.append(produced)
        parts_seen.append(_parts_of(store, BIG))
    grown = parts_seen.index(max(parts_seen))
    assert max(parts_seen) >= 8 and any(0 < n < max(parts_seen) for n in parts_seen[grown:])  # shrank
    assert BIG not in _state(store)[0] and parts_seen[-1] == 0  # and was forgotten, parts and all


def test_a_second_crash_while_a_restarted_worker_completes_a_journal_still_leaves_a_batch_boundary() -> None:
    """Killed among a batch's parts, restarted, and killed again while writing what the journal
    completes or the next batch's journal: the state is still that of one batch boundary or the next."""
    records = _big_company()
    batch = 60
    store: dict[bytes, bytes] = {}
    correlator = _correlator(store)
    _write(store, _changes(correlator, records[:batch])[1])
    _, changes = _changes(correlator, records[batch : 2 * batch])
    complete = dict(store)
    _write(complete, changes)
    state_first = _state(complete)
    _, more = _changes(correlator, records[2 * batch : 3 * batch])
    _write(complete, more)
    state_second = _state(complete)

    parts_at = [n for n, (_, key, _) in enumerate(changes) if is_part_key(key)]
    assert len(parts_at) >= 5
    _write(store, changes[: parts_at[2]])  # the journal landed, then only two of the ledger's parts
    restarted = _correlator(store)
    # The first batch comes again (its records are applied already), then the next one.
    _, again = _changes(restarted, records[batch : 3 * batch])
    header = max(n for n, (_, key, _) in enumerate(again) if key == b"j:0")
    for written in range(len(again)):
        crashed_store = dict(store)
        _write(crashed_store, again[:written])
        assert _state(crashed_store) == (state_second if written > header else state_first), written
