"""One customer's ledger as a story: promises, complaints and what happened to each, in time order.

The story is built from what the ledger said (alignment events and the alerts they raised) and, when the
source has them, from the input events that caused it (terms, amendments, approvals, deliveries, replies)
with what the engine made of each (its trace, `streams.engine.trace`). ClickHouse holds only the former;
a replay of event files has all three. Either way the same model and the same rendering are used, so
`explain` reads alike with or without a stack. No rule of the engine is repeated here: which promise an
input event counted toward, and whether on time, is what the engine said while replaying it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.contract import ms_to_iso
from streams.engine.trace import (
    AMENDED,
    AMENDED_UNINFORMED,
    COUNTED,
    FULFILMENT,
    UNCHANGED,
    TraceRecord,
)

Record = Mapping[str, Any]

LEDGER = "ledger"  # an alignment event
ALERT = "alert"  # an alert raised from a broken promise
INPUT = "input"  # an input event from a source system (replay only)

#: At one instant the engine opens before it warns, warns before it ends, ends before it records late.
_LEDGER_ORDER = {
    "PROMISE_OPENED": 0,
    "AT_RISK": 1,
    "PROMISE_KEPT": 2,
    "PROMISE_BROKEN": 2,
    "FULFILLED_LATE": 3,
    "COMPLAINT_ATTRIBUTED": 4,
    "STYLE_MISMATCH": 5,
    "TONE": 6,
    "RECOVERED": 7,
    "CONTRADICTION": 8,
}

_BROKEN_MEANING = {
    "NOT_DELIVERED": "nothing delivered by the due time",
    "SHORT": "less than promised delivered by the due time",
    "MISSING_FEATURE": "full quantity, but a promised feature missing",
    "NOT_SHIPPED": "the order did not ship in the promised window",
    "NOT_DONE": "not done by the due time",
    "NO_REPLY": "no first reply by the due time",
}
_RISK_MEANING = {
    "UNINFORMED_CHANGE": "terms changed without telling the customer (judged on the original terms)",
    "UNAPPROVED": "not signed off by the delivery team in time",
    "DEADLINE_NEAR": "most of the window gone, not fulfilled yet",
    "STOCKOUT": "the product is out of stock",
}


def when(ms: int | None) -> str:
    """A timestamp as people read it in a terminal: ``2026-03-10 09:00 UTC`` (seconds only if any)."""
    if ms is None:
        return "-"
    iso = ms_to_iso(ms)  # 2026-03-10T09:00:00Z or ...00.250Z
    day, clock = iso[:-1].split("T")
    clock = clock[:5] if clock[5:] in (":00", ":00.000") else clock
    return f"{day} {clock} UTC"


def duration(seconds: int) -> str:
    """``2d 8h``, ``3h 5m``, ``40s``: the two largest units."""
    parts = []
    remaining = abs(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2]) or "0s"


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a timeline: when, what (a short label), the plain-language detail, and the record."""

    at: int
    origin: str
    what: str
    detail: str
    record: Record
    #: ties at one instant are broken by the order the pipeline produced them
    order: tuple[int, str] = (0, "")
    #: for an input event: what the engine said it did to the promise (`streams.engine.trace`)
    effect: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "origin": self.origin,
            "what": self.what,
            "detail": self.detail,
            "record": dict(self.record),
            "effect": self.effect,
        }


@dataclass(slots=True)
class PromiseStory:
    promise_id: str
    department: str | None
    kind: str | None
    #: what was promised, as far as the source knows it (input events give more than the ledger)
    terms: dict[str, Any] = field(default_factory=dict)
    due_at: int | None = None
    status: str = "OPEN"
    reason: str | None = None
    ended_at: int | None = None
    opened_at: int | None = None
    #: fulfilled after it broke: how long after the due time (it stays broken)
    late_by_s: int | None = None
    complaints: list[str] = field(default_factory=list)
    timeline: list[Entry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "promise_id": self.promise_id,
            "department": self.department,
            "kind": self.kind,
            "terms": self.terms,
            "due_at": self.due_at,
            "status": self.status,
            "reason": self.reason,
            "ended_at": self.ended_at,
            "late_by_s": self.late_by_s,
            "complaints": list(self.complaints),
            "timeline": [entry.to_dict() for entry in self.timeline],
        }


@dataclass(slots=True)
class ComplaintStory:
    ticket_id: str
    at: int
    category: str | None
    root_department: str | None
    promise_ids: list[str]
    text: str | None = None
    timeline: list[Entry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "at": self.at,
            "category": self.category,
            "root_department": self.root_department,
            "promise_ids": list(self.promise_ids),
            "text": self.text,
            "timeline": [entry.to_dict() for entry in self.timeline],
        }


@dataclass(slots=True)
class Story:
    subject: str
    customer_id: str
    source: str
    promises: list[PromiseStory]
    complaints: list[ComplaintStory]
    #: what belongs to no single promise or complaint (orders, exposures to claims, ...)
    other: list[Entry]
    alerts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "customer_id": self.customer_id,
            "source": self.source,
            "promises": [promise.to_dict() for promise in self.promises],
            "complaints": [complaint.to_dict() for complaint in self.complaints],
            "other": [entry.to_dict() for entry in self.other],
            "alerts": self.alerts,
        }


# --------------------------------------------------------------------------------------------------
# what the ledger said


def _ledger_entry(event: Record, position: int) -> Entry:
    kind = event["type"]
    reason = event.get("reason")
    order = (_LEDGER_ORDER.get(kind, 9), f"{position:08d}")
    if kind == "PROMISE_OPENED":
        detail = f"promise opened, due {when(event.get('due_at'))}"
        what = "opened"
    elif kind == "AT_RISK":
        detail = f"at risk: {reason} — {_RISK_MEANING.get(reason or '', 'warning')}"
        what = "at risk"
    elif kind == "PROMISE_KEPT":
        detail = f"kept, due {when(event.get('due_at'))}"
        what = "kept"
    elif kind == "PROMISE_BROKEN":
        meaning = _BROKEN_MEANING.get(reason or "", "broken")
        detail = f"broken: {reason} — {meaning} (severity {event.get('severity')})"
        what = "broken"
    elif kind == "FULFILLED_LATE":
        delay = event.get("delay_s") or 0
        detail = f"fulfilled late, {duration(delay)} after the due time (still broken)"
        what = "came late"
    elif kind == "COMPLAINT_ATTRIBUTED":
        traced = ", ".join(event.get("promise_ids") or []) or "no promise"
        detail = (
            f"complaint {event.get('ticket_id')} ({reason}) traced to {traced}; "
            f"root department {event.get('root_department')}"
        )
        what = "complaint"
    elif kind == "STYLE_MISMATCH":
        detail = f"unsigned service reply to a customer of rep {event.get('rep_name')} (personal sales tone)"
        what = "style"
    elif kind == "TONE":
        detail = f"discouraged phrases: {', '.join(event.get('phrases') or [])}"
        what = "tone"
    elif kind == "RECOVERED":
        detail = "complaint resolved and rated 4 or 5: recovered"
        what = "recovered"
    else:
        detail = f"{kind} {reason or ''}".strip()
        what = kind.lower()
    return Entry(event["at"], LEDGER, what, detail, event, order)


def _alert_entry(alert: Record) -> Entry:
    detail = (
        f"alert raised: {alert.get('severity')} {alert.get('type')}, Slack group {alert.get('group_key')}, "
        f"customer value {float(alert.get('customer_value') or 0.0):.2f}"
    )
    return Entry(alert["at"], ALERT, "alert", detail, alert, (_LEDGER_ORDER["PROMISE_BROKEN"], "~"))


# --------------------------------------------------------------------------------------------------
# what the source systems said (replay only), and what the engine made of it (its trace)


def _features(features: Iterable[str] | None) -> str:
    listed = list(features or [])
    return f" with {', '.join(listed)}" if listed else ""


def _input_detail(event: Record) -> tuple[str, str]:
    """The input event in words, as its source system said it; what it did is `_effect_detail`'s."""
    kind = event["type"]
    if kind == "CommitmentMade":
        price = event.get("unit_price")
        priced = f" at {price:.2f}" if price is not None else ""
        rep = f" by rep {event['rep_name']}" if event.get("rep_name") else ""
        return "committed", (
            f"commitment{rep}: {event['quantity']} × {event['product']}{_features(event.get('features'))}"
            f"{priced}, deliver by {when(event['deliver_by'])} (deal {event['deal_id']})"
        )
    if kind == "CommitmentApproved":
        return "approved", f"signed off by {event['approver']}"
    if kind == "CommitmentAmended":
        changes = []
        if event.get("deliver_by") is not None:
            changes.append(f"deliver by {when(event['deliver_by'])}")
        if event.get("quantity") is not None:
            changes.append(f"quantity {event['quantity']}")
        return "amended", f"amended to {', '.join(changes) or 'no change'}"
    if kind in ("OrderDelivered", "OrderShipped"):
        verb = "delivered" if kind == "OrderDelivered" else "shipped"
        moved = f"{verb} {event['quantity']} × {event['product']}{_features(event.get('features'))}"
        return verb, f"{moved} (order {event['order_id']})"
    if kind == "OrderPlaced":
        amount = f", amount {event['amount']:.2f}" if event.get("amount") is not None else ""
        deal = f" for deal {event['deal_id']}" if event.get("deal_id") else ""
        return "ordered", f"order {event['order_id']}{deal}: {event['quantity']} × {event['product']}{amount}"
    if kind == "ServicePromiseMade":
        return "promised", f"service promise: {event['kind']} by {when(event['due_at'])}"
    if kind in ("CallbackMade", "RefundIssued"):
        done = "called back" if kind == "CallbackMade" else "refund issued"
        amount = f" ({event['amount']:.2f})" if event.get("amount") is not None else ""
        return done, f"{done}{amount}"
    if kind == "TicketOpened":
        return "ticket", f"ticket opened ({event['category']}): {event.get('text') or ''}".rstrip(": ")
    if kind == "AgentReplied":
        agent = event.get("agent_name") or "unsigned"
        return "reply", f"reply ({agent}): {event['text']}"
    if kind == "TicketResolved":
        return "resolved", "ticket resolved"
    if kind == "SatisfactionRated":
        return "rated", f"satisfaction {event['score']}/5"
    if kind == "CustomerExposed":
        return "saw claim", f"saw marketing claim {event['claim_id']}"
    if kind == "ClaimPublished":
        within = event.get("ships_within_hours")
        shipping = f" within {within} h" if within is not None else ""
        return (
            "claim",
            f"claim {event['claim_id']} ({event['campaign_id']}): "
            f"{event['claim']}{shipping} on {event['product']}",
        )
    return kind, kind


def _came_late(record: TraceRecord) -> str:
    return f"came late, {duration((record.at - record.due_at) // 1000)} after the due time"


def _effect_detail(what: str, detail: str, record: TraceRecord) -> tuple[str, str]:
    """What the engine says the input event did to the promise, added to the event in words."""
    effect, state = record.effect, record.state
    if effect == COUNTED:
        if state == "BROKEN":
            return f"{what} late", f"{detail}; {_came_late(record)}"
        if state == "KEPT":
            return what, f"{detail}; counted after the promise was kept"
        return what, f"{detail}; counted, on time ({record.fulfilled} of {record.quantity} so far)"
    if effect == FULFILMENT:
        return (f"{what} late", f"{detail}; {_came_late(record)}") if state == "BROKEN" else (what, detail)
    if effect == AMENDED:
        moved = ""
        if record.previous_due_at != record.due_at:
            moved = f" (due {when(record.previous_due_at)} → {when(record.due_at)})"
        return what, f"{detail}; customer informed: the new terms apply{moved}"
    if effect == AMENDED_UNINFORMED:
        return what, f"{detail}; customer NOT informed: the original terms still hold"
    if effect == UNCHANGED:
        why = "already signed off" if state == "OPEN" else f"the promise had already been {state.lower()}"
        return what, f"{detail}; changed nothing ({why})"
    return what, detail


def _input_entry(event: Record, position: int, record: TraceRecord | None = None) -> Entry:
    what, detail = _input_detail(event)
    if record is not None:
        what, detail = _effect_detail(what, detail, record)
    elif event["type"] in ("OrderDelivered", "OrderShipped"):
        detail += "; not counted toward any promise"
    # an input event comes before what the ledger concluded from it at the same instant
    order = (-1, f"{position:08d}")
    return Entry(event["occurred_at"], INPUT, what, detail, event, order, record.effect if record else None)


def _terms_of(commitment: Record) -> dict[str, Any]:
    return {
        "product": commitment["product"],
        "quantity": commitment["quantity"],
        "features": list(commitment.get("features") or []),
        "deliver_by": commitment["deliver_by"],
        "unit_price": commitment.get("unit_price"),
        "rep_name": commitment.get("rep_name"),
        "deal_id": commitment["deal_id"],
    }


def _ledger_terms(event: Record) -> dict[str, Any]:
    names = ("product", "deal_id", "order_id", "ticket_id", "claim_id", "campaign_id", "rep_name")
    return {name: event[name] for name in names if event.get(name) is not None}


# --------------------------------------------------------------------------------------------------
# assembling


def build_story(
    subject: str,
    customer_id: str,
    source: str,
    alignment_events: Iterable[Record],
    alerts: Iterable[Record] = (),
    inputs: Iterable[Record] = (),
    claims: Mapping[str, Record] | None = None,
    trace: Iterable[TraceRecord] = (),
) -> Story:
    """The customer's story from its alignment events and alerts, plus its input events if known.

    Which promise an input event concerns, and what it counted for, come from the engine only: the
    ``trace`` it recorded while replaying (`streams.engine.trace`) and the ``cause_event_id`` of its
    alignment events. ``claims`` are the ``ClaimPublished`` events by claim id, to show the marketing
    claim behind a promise.
    """
    promises: dict[str, PromiseStory] = {}
    complaints: dict[str, ComplaintStory] = {}
    other: list[Entry] = []
    #: promise id -> (order key, due time) of the latest fact that carried the promise's due time
    latest_due: dict[str, tuple[tuple[int, int, int], int]] = {}
    ledger_events = list(alignment_events)

    for position, event in enumerate(ledger_events):
        entry = _ledger_entry(event, position)
        promise_id = event.get("promise_id")
        ticket_id = event.get("ticket_id")
        if promise_id:
            promise = promises.get(promise_id)
            if promise is None:
                promise = promises[promise_id] = PromiseStory(
                    promise_id, event.get("department"), event.get("kind")
                )
                promise.terms = _ledger_terms(event)
            promise.timeline.append(entry)
            if event.get("due_at") is not None:
                _note_due(latest_due, promise_id, (event["at"], entry.order[0], position), event["due_at"])
            _apply_outcome(promise, event)
        elif event["type"] == "COMPLAINT_ATTRIBUTED" and ticket_id:
            complaints[ticket_id] = ComplaintStory(
                ticket_id,
                event["at"],
                event.get("reason"),
                event.get("root_department"),
                list(event.get("promise_ids") or []),
                timeline=[entry],
            )
        elif ticket_id and ticket_id in complaints:
            complaints[ticket_id].timeline.append(entry)
        else:
            other.append(entry)

    # a complaint shows in the timeline of every promise it was traced to
    for complaint in complaints.values():
        for promise_id in complaint.promise_ids:
            promise = promises.get(promise_id)
            if promise is not None:
                promise.complaints.append(complaint.ticket_id)
                promise.timeline.append(complaint.timeline[0])

    alert_count = 0
    for alert in alerts:
        alert_count += 1
        entry = _alert_entry(alert)
        promise = promises.get(alert.get("promise_id") or "")
        (promise.timeline if promise is not None else other).append(entry)

    records = [record for record in trace if record.customer_id == customer_id]
    for position, record in enumerate(records):
        # an input event's effect comes before what the ledger concluded from it at the same instant
        _note_due(latest_due, record.promise_id, (record.at, -1, position), record.due_at)
    _attach_inputs(list(inputs), ledger_events, records, promises, complaints, other, claims or {})

    for promise_id, (_, due_at) in latest_due.items():
        promises[promise_id].due_at = due_at
    for timeline in (
        *(p.timeline for p in promises.values()),
        *(c.timeline for c in complaints.values()),
        other,
    ):
        timeline.sort(key=lambda entry: (entry.at, entry.order))
    ordered = sorted(
        promises.values(), key=lambda p: (p.opened_at if p.opened_at is not None else 0, p.promise_id)
    )
    return Story(
        subject=subject,
        customer_id=customer_id,
        source=source,
        promises=ordered,
        complaints=sorted(complaints.values(), key=lambda c: (c.at, c.ticket_id)),
        other=other,
        alerts=alert_count,
    )


def _note_due(
    latest: dict[str, tuple[tuple[int, int, int], int]], promise_id: str, key: tuple[int, int, int], due: int
) -> None:
    """Keep the due time of the latest fact: the promise's terms as they stand now (the SQL view
    ``promise_state`` takes the same: the due time of the latest alignment event)."""
    known = latest.get(promise_id)
    if known is None or key >= known[0]:
        latest[promise_id] = (key, due)


def _apply_outcome(promise: PromiseStory, event: Record) -> None:
    kind = event["type"]
    if kind == "PROMISE_OPENED":
        promise.opened_at = event["at"]
    elif kind == "AT_RISK" and promise.status == "OPEN":
        promise.status = "AT_RISK"
    elif kind in ("PROMISE_KEPT", "PROMISE_BROKEN"):
        promise.status = "KEPT" if kind == "PROMISE_KEPT" else "BROKEN"
        promise.reason = event.get("reason")
        promise.ended_at = event["at"]
    elif kind == "FULFILLED_LATE":
        promise.late_by_s = event.get("delay_s")


def _attach_inputs(
    inputs: list[Record],
    ledger_events: list[Record],
    records: list[TraceRecord],
    promises: dict[str, PromiseStory],
    complaints: dict[str, ComplaintStory],
    other: list[Entry],
    claims: Mapping[str, Record],
) -> None:
    """Put each input event on the promises the engine says it touched, on its complaint, else ``other``."""
    effects: dict[str, dict[str, TraceRecord]] = {}
    for record in records:
        effects.setdefault(record.event_id, {})[record.promise_id] = record
    caused: dict[str, dict[str, None]] = {}  # an ordered set of the promises each input event moved
    for event in ledger_events:
        cause, promise_id = event.get("cause_event_id"), event.get("promise_id")
        if cause and promise_id:
            caused.setdefault(cause, {})[promise_id] = None
    for position, event in enumerate(inputs):
        event_id = event["event_id"]
        touched = effects.get(event_id, {})
        target_ids = [*touched, *(p for p in caused.get(event_id, ()) if p not in touched)]
        if event["type"] == "CustomerExposed":  # the claim behind a promise, as the ledger named it
            target_ids += [
                p.promise_id for p in promises.values() if p.terms.get("claim_id") == event["claim_id"]
            ]
        targets = [promises[promise_id] for promise_id in target_ids if promise_id in promises]
        for promise in targets:
            if event["type"] == "CommitmentMade":
                promise.terms = {**promise.terms, **_terms_of(event)}
            promise.timeline.append(_input_entry(event, position, touched.get(promise.promise_id)))
        ticket_id = event.get("ticket_id")
        complaint = complaints.get(ticket_id) if ticket_id else None
        if complaint is not None:
            if event["type"] == "TicketOpened":
                complaint.text = event.get("text")
            complaint.timeline.append(_input_entry(event, position))
        if not targets and complaint is None:
            other.append(_input_entry(event, position))
    for record in records:  # in the order the engine applied them: the last amendment's terms hold
        promise = promises.get(record.promise_id)
        if record.effect == AMENDED and promise is not None and "quantity" in promise.terms:
            promise.terms = {**promise.terms, "quantity": record.quantity, "deliver_by": record.due_at}
    for promise in promises.values():
        claim_id = promise.terms.get("claim_id")
        claim = claims.get(claim_id) if claim_id else None
        if claim is not None:
            promise.timeline.append(_input_entry(claim, -1))
