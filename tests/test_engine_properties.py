"""Properties of the engine over generated event streams (hypothesis)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contract import InputEvent, parse_event
from streams.engine import AlignmentEvent, EngineConfig, PromiseEngine

HOUR = 3_600_000
START = 1_772_323_200_000  # 2026-03-01T00:00:00Z
FAR_FUTURE = START + 400 * 24 * HOUR
CATEGORIES = ("LATE", "MISSING_ITEMS", "NOT_AS_ADVERTISED", "OTHER")
TEXTS = ("On it.", "Unfortunately not.", "I’m afraid that is our policy.", "Thanks!")

# (hour, kind, a, b, flag): a small vocabulary of ids so events collide on promises, orders and tickets.
step = st.tuples(st.integers(0, 120), st.integers(0, 13), st.integers(0, 2), st.integers(0, 3), st.booleans())
global_step = st.tuples(
    st.integers(0, 120), st.integers(0, 2), st.integers(0, 2), st.integers(0, 3), st.booleans()
)


def customer_event(
    customer: str, number: int, hour: int, kind: int, a: int, b: int, flag: bool
) -> dict[str, Any]:
    at = START + hour * HOUR
    base = {"event_id": f"{customer}-{number}", "customer_id": customer, "occurred_at": at, "source": "test"}
    product = f"p{b % 2}"
    shapes: list[tuple[str, dict[str, Any]]] = [
        (
            "CommitmentMade",
            {
                "commitment_id": f"k{a}",
                "deal_id": f"d{a}",
                "rep_name": "Ana" if flag else None,
                "product": product,
                "quantity": 1 + b,
                "deliver_by": at + 24 * HOUR * (1 + a),
                "unit_price": None,
                "features": ["SSO"] if flag else [],
            },
        ),
        ("CommitmentApproved", {"commitment_id": f"k{a}", "approver": "ops"}),
        (
            "CommitmentAmended",
            {
                "commitment_id": f"k{a}",
                "deliver_by": at + 24 * HOUR * b if b % 2 else None,
                "quantity": None if b % 2 else b,
                "customer_informed": flag,
            },
        ),
        (
            "OrderPlaced",
            {
                "order_id": f"o{a}",
                "deal_id": f"d{b}" if flag else None,
                "product": product,
                "quantity": 1 + a,
                "amount": 100.0 * (a + 1),
            },
        ),
        ("OrderShipped", {"order_id": f"o{a}", "product": product, "quantity": 1 + b}),
        (
            "OrderDelivered",
            {
                "order_id": f"o{a}",
                "deal_id": f"d{b}" if flag else None,
                "product": product,
                "quantity": 1 + b,
                "features": ["SSO"] if a % 2 else [],
            },
        ),
        ("CustomerExposed", {"claim_id": f"cl{a % 2}"}),
        (
            "TicketOpened",
            {
                "ticket_id": f"t{a}",
                "category": CATEGORIES[b],
                "order_id": f"o{b}" if flag else None,
                "deal_id": None,
                "text": None,
            },
        ),
        ("AgentReplied", {"ticket_id": f"t{a}", "agent_name": "Gus" if flag else None, "text": TEXTS[b]}),
        (
            "ServicePromiseMade",
            {
                "promise_id": f"sp{a}",
                "ticket_id": f"t{b % 3}",
                "kind": "CALLBACK" if flag else "REFUND",
                "due_at": at + 4 * HOUR * (1 + b),
            },
        ),
        ("CallbackMade", {"ticket_id": f"t{a}"}),
        ("RefundIssued", {"ticket_id": f"t{a}", "amount": None}),
        ("TicketResolved", {"ticket_id": f"t{a}"}),
        ("SatisfactionRated", {"ticket_id": f"t{a}", "score": 2 + b}),
    ]
    type_name, fields = shapes[kind]
    return {"type": type_name, **base, **fields}


def global_event(number: int, hour: int, kind: int, a: int, b: int, flag: bool) -> dict[str, Any]:
    # Half past the hour: never at the same time as a customer event, so time order fixes their order.
    at = START + hour * HOUR + HOUR // 2
    base = {"event_id": f"g-{number}", "customer_id": None, "occurred_at": at, "source": "test"}
    if kind == 0:
        fields = {
            "type": "ClaimPublished",
            "claim_id": f"cl{a % 2}",
            "campaign_id": "spring",
            "product": f"p{b % 2}",
            "claim": "IN_STOCK" if flag else "SHIPS_WITHIN",
            "ships_within_hours": None if flag else 24 * (1 + b),
            "valid_until": None,
            "text": None,
        }
    elif kind == 1:
        fields = {"type": "StockChanged", "product": f"p{b % 2}", "on_hand": 0 if flag else 5}
    else:
        fields = {"type": "ClaimWithdrawn", "claim_id": f"cl{a % 2}"}
    return {**base, **fields}


@st.composite
def company(draw: st.DrawFn) -> tuple[list[InputEvent], list[list[InputEvent]]]:
    """Global events, and per customer its own events in time order."""
    globals_ = sorted(draw(st.lists(global_step, max_size=6)), key=lambda s: s[0])
    global_events = [parse_event(global_event(n, *s)) for n, s in enumerate(globals_)]
    customers = []
    for index in range(draw(st.integers(1, 3))):
        steps = sorted(draw(st.lists(step, max_size=25)), key=lambda s: s[0])
        customers.append([parse_event(customer_event(f"c{index}", n, *s)) for n, s in enumerate(steps)])
    return global_events, customers


def time_ordered(global_events: list[InputEvent], customers: list[list[InputEvent]], ties: list[int]) -> list:
    """All events by time; ties between streams broken by ``ties``; each stream keeps its own order."""
    streams = [global_events, *customers]
    tagged = [
        (event.occurred_at, ties[(stream * 7 + position) % len(ties)] if ties else 0, stream, position)
        for stream, events in enumerate(streams)
        for position, event in enumerate(events)
    ]
    tagged.sort()
    next_of = [0] * len(streams)
    merged = []
    for _, _, stream, _ in tagged:
        merged.append(streams[stream][next_of[stream]])
        next_of[stream] += 1
    return merged


def replay(events: list[InputEvent], config: EngineConfig | None = None) -> list[AlignmentEvent]:
    engine = PromiseEngine(config)
    out = []
    for event in events:
        out.extend(engine.process(event))
    out.extend(engine.advance_to(FAR_FUTURE))
    return out


def by_customer(events: list[AlignmentEvent]) -> dict[str | None, list[dict[str, Any]]]:
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event.customer_id, []).append(event.to_dict())
    return grouped


@settings(max_examples=80, deadline=None)
@given(company(), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), max_size=15))
def test_redelivering_any_events_changes_nothing(world: Any, redeliveries: list[tuple[int, int]]) -> None:
    events = time_ordered(*world, ties=[])
    if not events:
        return
    with_copies = list(events)
    for pick, later in redeliveries:
        original = events[pick % len(events)]
        first = with_copies.index(original)
        with_copies.insert(first + 1 + later % (len(with_copies) - first), original)
    assert [e.to_dict() for e in replay(with_copies)] == [e.to_dict() for e in replay(events)]


@settings(max_examples=80, deadline=None)
@given(company(), st.lists(st.integers(0, 1000), min_size=1, max_size=40))
def test_interleaving_customers_changes_no_customers_output(world: Any, ties: list[int]) -> None:
    baseline = by_customer(replay(time_ordered(*world, ties=[])))
    assert by_customer(replay(time_ordered(*world, ties=ties))) == baseline


@settings(max_examples=80, deadline=None)
@given(company())
def test_every_promise_ends_exactly_once(world: Any) -> None:
    out = replay(time_ordered(*world, ties=[]))
    opened = Counter((e.customer_id, e.promise_id) for e in out if e.type == "PROMISE_OPENED")
    ended = Counter(
        (e.customer_id, e.promise_id) for e in out if e.type in ("PROMISE_KEPT", "PROMISE_BROKEN")
    )
    assert set(opened.values()) <= {1}
    assert ended == opened
    at_risk = Counter((e.customer_id, e.promise_id, e.reason) for e in out if e.type == "AT_RISK")
    assert set(at_risk.values()) <= {1}
    broken = {(e.customer_id, e.promise_id) for e in out if e.type == "PROMISE_BROKEN"}
    late = Counter((e.customer_id, e.promise_id) for e in out if e.type == "FULFILLED_LATE")
    assert set(late) <= broken and set(late.values()) <= {1}
    assert len({e.alignment_id for e in out}) == len(out)


GRACE_HOURS = 3


@settings(max_examples=120, deadline=None)
@given(company(), st.lists(st.integers(0, GRACE_HOURS * HOUR), min_size=1, max_size=60), st.randoms())
def test_any_arrival_within_the_grace_period_gives_the_output_of_time_order(
    world: Any, delays: list[int], rng: Any
) -> None:
    """SPEC §4 "Arrival order": each event may arrive up to the grace period after its own time (so
    before the clock passed it + grace), in any order across and within customers."""
    config = EngineConfig(grace_seconds=GRACE_HOURS * 3600)
    in_time_order = time_ordered(*world, ties=[])
    arrival_keys = [
        (event.occurred_at + delays[index % len(delays)], rng.random(), index)
        for index, event in enumerate(in_time_order)
    ]
    arrivals = [in_time_order[index] for *_, index in sorted(arrival_keys)]
    assert [e.to_dict() for e in replay(arrivals, config)] == [
        e.to_dict() for e in replay(in_time_order, config)
    ]
