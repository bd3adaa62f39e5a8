"""SPEC §5: event-time clock, grace, deadlines in due order, advance_to."""

from __future__ import annotations

from streams.contract import AgentReplied, TicketOpened
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
    assert types(engine.process(reply("a", "t1", DUE - MINUTE))) == [("PROMISE_KEPT", None)]


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


def test_a_fulfilment_after_due_breaks_the_promise_even_before_the_clock_fires() -> None:
    engine = PromiseEngine()
    engine.process(ticket("a", "t1", OPENED_AT))
    out = engine.process(reply("a", "t1", DUE + 1000))
    assert [(e.type, e.reason, e.at, e.delay_s) for e in out] == [
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
