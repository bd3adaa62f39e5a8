"""SPEC §5: event-time clock, grace, deadlines in due order, advance_to."""

from __future__ import annotations

from streams.contract import AgentReplied, TicketOpened, event_from_json_line
from streams.engine import EngineConfig, PromiseEngine
from tests.helpers import ms

MINUTE = 60_000
OPENED_AT = ms("03-01T00:00")
DUE = OPENED_AT + 24 * 3600 * 1000  # first reply within 24 h


def ticket(customer: str, ticket_id: str, at: int) -> TicketOpened:
    return TicketOpened(f"open-{ticket_id}", customer, at, "zendesk", ticket_id, "OTHER", None, None, None)


def reply(customer: str, ticket_id: str, at: int, event_id: str = "") -> AgentReplied:
    return AgentReplied(
        event_id or f"reply-{ticket_id}-{at}", customer, at, "zendesk", ticket_id, "Gus", "On it."
    )


def types(events: list) -> list[tuple[str, str | None]]:
    return [(e.type, e.reason) for e in events]


def test_fulfilment_published_within_grace_still_keeps_the_promise() -> None:
    engine = PromiseEngine()
    engine.process(ticket("a", "t1", OPENED_AT))
    fired = [e for e in engine.process(ticket("c", "t3", DUE + 4 * MINUTE)) if e.customer_id == "a"]
    assert ("PROMISE_BROKEN", "NO_REPLY") not in types(fired)
    # Within the grace period the reply is held back, then applied at its own time.
    assert engine.process(reply("a", "t1", DUE - MINUTE)) == []
    kept = [e for e in engine.advance_to(DUE + 10 * MINUTE) if e.customer_id == "a"]
    assert [(e.type, e.at) for e in kept] == [("PROMISE_KEPT", DUE - MINUTE)]


def test_deadline_fires_once_the_clock_passes_due_plus_grace() -> None:
    engine = PromiseEngine()
    engine.process(ticket("a", "t1", OPENED_AT))
    at_grace = [e for e in engine.process(ticket("b", "t2", DUE + 5 * MINUTE)) if e.customer_id == "a"]
    assert ("PROMISE_BROKEN", "NO_REPLY") not in types(at_grace)  # passing means strictly after
    fired = [e for e in engine.process(ticket("c", "t3", DUE + 5 * MINUTE + 1)) if e.customer_id == "a"]
    broken = [e for e in fired if e.type == "PROMISE_BROKEN"]
    assert [(e.at, e.cause_event_id) for e in broken] == [(DUE, None)]
    # A reply that happened before due but was published after the grace period: late, by its own time.
    late = engine.process(reply("a", "t1", DUE - MINUTE))
    assert [(e.type, e.delay_s) for e in late] == [("FULFILLED_LATE", -60)]


def test_a_fulfilment_after_due_breaks_the_promise_before_it_is_applied() -> None:
    engine = PromiseEngine()
    out = engine.process(ticket("a", "t1", OPENED_AT))
    out += engine.process(reply("a", "t1", DUE + 1000))
    out += engine.drain()
    assert [(e.type, e.reason, e.at, e.delay_s) for e in out] == [
        ("COMPLAINT_ATTRIBUTED", "OTHER", OPENED_AT, None),
        ("PROMISE_OPENED", None, OPENED_AT, None),
        ("AT_RISK", "DEADLINE_NEAR", OPENED_AT + 18 * 3600 * 1000, None),
        ("PROMISE_BROKEN", "NO_REPLY", DUE, None),
        ("FULFILLED_LATE", None, DUE + 1000, 1),
    ]


def test_grace_is_configurable() -> None:
    engine = PromiseEngine(EngineConfig(grace_seconds=0))
    engine.process(ticket("a", "t1", OPENED_AT))
    fired = engine.process(ticket("b", "t2", DUE + 1))
    assert ("PROMISE_BROKEN", "NO_REPLY") in types(fired)


def test_advance_to_fires_deadlines_before_it_in_due_order() -> None:
    engine = PromiseEngine()
    engine.process(ticket("late", "t-late", OPENED_AT + 2 * MINUTE))
    engine.process(ticket("early", "t-early", OPENED_AT + MINUTE))
    assert [e for e in engine.advance_to(DUE + MINUTE) if e.type == "PROMISE_BROKEN"] == []
    assert engine.clock == DUE + MINUTE
    fired = engine.advance_to(DUE + 3 * MINUTE)
    assert [(e.type, e.customer_id, e.at) for e in fired] == [
        ("PROMISE_BROKEN", "early", DUE + MINUTE),
        ("PROMISE_BROKEN", "late", DUE + 2 * MINUTE),
    ]
    assert engine.advance_to(DUE + 3 * MINUTE) == []  # nothing fires twice


def test_clock_is_event_time_and_never_goes_back() -> None:
    engine = PromiseEngine()
    assert engine.clock is None
    engine.process(ticket("a", "t1", OPENED_AT))
    engine.process(ticket("b", "t2", OPENED_AT - 3600_000))
    assert engine.clock == OPENED_AT


def test_a_reply_that_arrives_before_its_late_ticket_is_judged_at_its_own_time() -> None:
    # Both replies arrive first; each ticket then arrives after the clock passed its time + grace.
    engine = PromiseEngine()
    out = engine.process(reply("slow", "t-slow", OPENED_AT + 30 * 3600 * 1000))
    out += engine.process(reply("quick", "t-quick", OPENED_AT + 30 * 3600 * 1000 + 30 * MINUTE))
    out += engine.process(ticket("slow", "t-slow", OPENED_AT))
    out += engine.process(ticket("quick", "t-quick", OPENED_AT + 30 * 3600 * 1000))
    out += engine.drain()
    slow = [(e.type, e.reason, e.at) for e in out if e.customer_id == "slow" and e.promise_id]
    assert slow == [
        ("PROMISE_OPENED", None, OPENED_AT),
        ("AT_RISK", "DEADLINE_NEAR", OPENED_AT + 18 * 3600 * 1000),
        ("PROMISE_BROKEN", "NO_REPLY", DUE),
        ("FULFILLED_LATE", None, OPENED_AT + 30 * 3600 * 1000),
    ]
    quick = [(e.type, e.at) for e in out if e.customer_id == "quick" and e.type == "PROMISE_KEPT"]
    assert quick == [("PROMISE_KEPT", OPENED_AT + 30 * 3600 * 1000 + 30 * MINUTE)]


def test_what_arrives_early_within_the_grace_period_counts_at_its_own_time() -> None:
    events = [
        event_from_json_line(line)
        for line in [
            '{"type":"ClaimPublished","event_id":"g1","occurred_at":"2026-03-01T00:00:00Z","source":"cms",'
            '"claim_id":"cl","campaign_id":"sp","product":"p","claim":"IN_STOCK"}',
            # The order arrives before the exposure that led to it, and the delivery before its commitment.
            '{"type":"OrderPlaced","event_id":"o1","customer_id":"c","occurred_at":"2026-03-01T01:02:00Z",'
            '"source":"erp","order_id":"o","product":"p","quantity":1}',
            '{"type":"CustomerExposed","event_id":"x1","customer_id":"c","occurred_at":"2026-03-01T01:00:00Z",'
            '"source":"web","claim_id":"cl"}',
            '{"type":"OrderDelivered","event_id":"d1","customer_id":"c","occurred_at":"2026-03-01T01:04:00Z",'
            '"source":"erp","order_id":"o2","deal_id":"deal","product":"p","quantity":2,"features":[]}',
            '{"type":"CommitmentMade","event_id":"k1","customer_id":"c","occurred_at":"2026-03-01T01:01:00Z",'
            '"source":"crm","commitment_id":"k","deal_id":"deal","product":"p","quantity":2,'
            '"deliver_by":"2026-03-05T00:00:00Z","features":[]}',
        ]
    ]
    engine = PromiseEngine()
    out = [e for event in events for e in engine.process(event)] + engine.drain()
    assert {(e.type, e.promise_id) for e in out if e.type in ("PROMISE_OPENED", "PROMISE_KEPT")} == {
        ("PROMISE_OPENED", "cl:o"),
        ("PROMISE_OPENED", "k"),
        ("PROMISE_KEPT", "k"),
    }


def test_a_deadline_far_in_the_past_costs_a_bounded_number_of_passes(monkeypatch) -> None:
    """Issue "No record, value or refusal stops a stage": housekeeping used to step from a far-past mark
    towards the present one lookback (30 days) at a time: ~10^5 passes for a mark 10^16 ms back. The
    contract refuses such a deadline today; the engine's cost must not depend on the span anyway."""
    from streams.contract import CommitmentMade

    passes = 0
    housekeep = PromiseEngine._housekeep

    def counted(self: PromiseEngine, ledger: object, moment: int) -> None:
        nonlocal passes
        passes += 1
        housekeep(self, ledger, moment)  # type: ignore[arg-type]

    monkeypatch.setattr(PromiseEngine, "_housekeep", counted)
    engine = PromiseEngine()
    far_past = -(10**16)
    engine.process(CommitmentMade("k1", "a", OPENED_AT, "crm", "k", "d", None, "p", 1, far_past, None, []))
    engine.process(ticket("b", "t-later", OPENED_AT + 3_600_000))
    engine.advance_to(OPENED_AT + 400 * 24 * 3_600_000)
    assert passes < 50
