"""One customer's ledger as a story: promises, complaints and what happened to each, in time order.

The story is built from what the ledger said (alignment events and the alerts they raised) and, when the
source has them, from the input events that caused it (terms, amendments, approvals, deliveries, replies).
ClickHouse holds only the former; a replay of event files has both. Either way the same model and the
same rendering are used, so `explain` reads alike with or without a stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.contract import ms_to_iso

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "origin": self.origin,
            "what": self.what,
            "detail": self.detail,
            "record": dict(self.record),
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
# what the source systems said (replay only)


def _features(features: Iterable[str] | None) -> str:
    listed = list(features or [])
    return f" with {', '.join(listed)}" if listed else ""


def _input_detail(event: Record, due_at: int | None) -> tuple[str, str]:
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
        told = (
            "customer informed: the new terms apply"
            if event.get("customer_informed")
            else "customer NOT informed: the original terms still hold"
        )
        return "amended", f"amended to {', '.join(changes) or 'no change'}; {told}"
    if kind in ("OrderDelivered", "OrderShipped"):
        verb = "delivered" if kind == "OrderDelivered" else "shipped"
        moved = f"{verb} {event['quantity']} × {event['product']}{_features(event.get('features'))}"
        moved += f" (order {event['order_id']})"
        if due_at is None:
            return verb, moved
        if event["occurred_at"] <= due_at:
            return verb, f"{moved}; counted, on time"
        late_by = (event["occurred_at"] - due_at) // 1000
        return f"{verb} late", f"{moved}; came late, {duration(late_by)} after the due time"
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


def _input_entry(event: Record, position: int, due_at: int | None = None) -> Entry:
    what, detail = _input_detail(event, due_at)
    # an input event comes before what the ledger concluded from it at the same instant
    return Entry(event["occurred_at"], INPUT, what, detail, event, (-1, f"{position:08d}"))


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
) -> Story:
    """The customer's story from its alignment events and alerts, plus its input events if known.

    ``claims`` are the ``ClaimPublished`` events by claim id, to show the marketing claim behind a promise.
    """
    promises: dict[str, PromiseStory] = {}
    complaints: dict[str, ComplaintStory] = {}
    other: list[Entry] = []
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
                promise.due_at = event["due_at"]
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

    _attach_inputs(list(inputs), promises, complaints, other, claims or {})

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


def _attach_inputs(
    inputs: list[Record],
    promises: dict[str, PromiseStory],
    complaints: dict[str, ComplaintStory],
    other: list[Entry],
    claims: Mapping[str, Record],
) -> None:
    """Put each input event on the promises (and complaint) it concerns; the rest under ``other``."""
    deal_of_order = {e["order_id"]: e.get("deal_id") for e in inputs if e["type"] == "OrderPlaced"}
    shown_claims: set[tuple[str, str]] = set()
    for position, event in enumerate(inputs):
        targets = [p for p in promises.values() if _concerns(p, event, deal_of_order)]
        for promise in targets:
            if event["type"] == "CommitmentMade":
                promise.terms = {**promise.terms, **_terms_of(event)}
            promise.timeline.append(_input_entry(event, position, promise.due_at))
        ticket_id = event.get("ticket_id")
        complaint = complaints.get(ticket_id) if ticket_id else None
        if complaint is not None:
            if event["type"] == "TicketOpened":
                complaint.text = event.get("text")
            complaint.timeline.append(_input_entry(event, position))
        if not targets and complaint is None:
            other.append(_input_entry(event, position))
    for promise in promises.values():
        claim_id = promise.terms.get("claim_id")
        claim = claims.get(claim_id) if claim_id else None
        if claim is not None and (promise.promise_id, claim_id) not in shown_claims:
            shown_claims.add((promise.promise_id, claim_id))
            promise.timeline.append(_input_entry(claim, -1))


def _concerns(promise: PromiseStory, event: Record, deal_of_order: Mapping[str, str | None]) -> bool:
    kind = event["type"]
    terms = promise.terms
    if kind in ("CommitmentMade", "CommitmentApproved", "CommitmentAmended"):
        return event["commitment_id"] == promise.promise_id
    if kind == "ServicePromiseMade":
        return event["promise_id"] == promise.promise_id
    if kind == "OrderDelivered":
        deal_id = event.get("deal_id") or deal_of_order.get(event["order_id"])
        return (
            promise.kind == "DELIVERY"
            and deal_id is not None
            and terms.get("deal_id") == deal_id
            and terms.get("product") == event["product"]
        )
    if kind == "OrderShipped":
        return promise.kind == "SHIPPING" and terms.get("order_id") == event["order_id"]
    if kind == "OrderPlaced":
        if promise.kind == "SHIPPING":
            return terms.get("order_id") == event["order_id"]
        return (
            promise.kind == "DELIVERY"
            and event.get("deal_id") is not None
            and terms.get("deal_id") == event["deal_id"]
        )
    if kind in ("CallbackMade", "RefundIssued"):
        wanted = "CALLBACK" if kind == "CallbackMade" else "REFUND"
        return promise.kind == wanted and terms.get("ticket_id") == event["ticket_id"]
    if kind == "AgentReplied":
        return promise.kind == "FIRST_REPLY" and terms.get("ticket_id") == event["ticket_id"]
    if kind == "CustomerExposed":
        return terms.get("claim_id") == event["claim_id"]
    return False
