"""The engine's persistent state: one ``CustomerLedger`` per customer plus the global ``Catalog``.

Every record converts to JSON-compatible data (``to_dict``) and back (``from_dict``), so a Faust table
keyed by customer can hold it. Nothing derived across customers lives here (see ``PromiseEngine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.contract import InputEvent, event_to_decoded
from streams.contract.events import EVENT_TYPES

OPEN = 0
KEPT = 1
BROKEN = 2

# Promise.flags bits: what has been recorded or emitted once.
APPROVED = 1
NEAR_SENT = 2
UNAPPROVED_SENT = 4
UNINFORMED_SENT = 8
STOCKOUT_SENT = 16
LATE_SENT = 32


@dataclass(slots=True)
class Promise:
    promise_id: str
    kind: str
    department: str
    made_at: int
    #: the terms the customer holds (only an informed amendment changes them)
    due_at: int
    quantity: int
    product: str | None = None
    features: tuple[str, ...] = ()
    deal_id: str | None = None
    order_id: str | None = None
    ticket_id: str | None = None
    #: the marketing claim behind it: its own claim for SHIPPING, the claim the customer saw for DELIVERY
    claim_id: str | None = None
    campaign_id: str | None = None
    rep_name: str | None = None
    state: int = OPEN
    ended_at: int | None = None
    #: quantity shipped (SHIPPING) or delivered (DELIVERY) so far, any time
    fulfilled: int = 0
    fulfilled_features: tuple[str, ...] = ()
    flags: int = 0
    #: when it last went at risk or broke: complaints look back from here
    trouble_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["features"] = list(self.features)
        data["fulfilled_features"] = list(self.fulfilled_features)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Promise:
        promise = cls(**data)
        promise.features = tuple(promise.features)
        promise.fulfilled_features = tuple(promise.fulfilled_features)
        return promise


@dataclass(slots=True)
class Order:
    deal_id: str | None
    product: str
    quantity: int
    placed_at: int

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class Ticket:
    ticket_id: str
    #: None while only replies are known (the TicketOpened may still arrive)
    opened_at: int | None
    category: str | None
    order_id: str | None = None
    deal_id: str | None = None
    last_at: int = 0
    replied: bool = False
    #: when the first agent reply happened (it may be known before the TicketOpened arrives)
    first_reply_at: int | None = None
    style_flagged: bool = False
    resolved: bool = False
    score: int | None = None
    recovered: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class CustomerLedger:
    customer_id: str
    promises: dict[str, Promise] = field(default_factory=dict)
    #: only orders that carry a deal or opened a shipping promise
    orders: dict[str, Order] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    #: claim_id -> when the customer saw it
    exposures: dict[str, int] = field(default_factory=dict)
    #: sum of OrderPlaced.amount
    value: float = 0.0
    #: the rep of the customer's latest commitment that named one (a personal sales approach)
    rep_name: str | None = None
    #: event_id -> (occurred_at, content fingerprint), for the dedupe window
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: when the next housekeeping pass over this ledger is due (None: none scheduled)
    compact_at: int | None = None
    last_at: int = 0
    #: event_id -> event held back until the clock has passed its time plus grace (arrival order)
    pending: dict[str, InputEvent] = field(default_factory=dict)

    def holds_nothing(self) -> bool:
        return not (
            self.promises
            or self.pending
            or self.orders
            or self.tickets
            or self.exposures
            or self.seen
            or self.value
            or self.rep_name
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "promises": [promise.to_dict() for promise in self.promises.values()],
            "orders": {order_id: order.to_dict() for order_id, order in self.orders.items()},
            "tickets": [ticket.to_dict() for ticket in self.tickets.values()],
            "exposures": dict(self.exposures),
            "value": self.value,
            "rep_name": self.rep_name,
            "seen": dict(self.seen),
            "compact_at": self.compact_at,
            "last_at": self.last_at,
            "pending": _pending_to_list(self.pending),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerLedger:
        promises = [Promise.from_dict(item) for item in data["promises"]]
        tickets = [Ticket(**item) for item in data["tickets"]]
        return cls(
            customer_id=data["customer_id"],
            promises={promise.promise_id: promise for promise in promises},
            orders={order_id: Order(**item) for order_id, item in data["orders"].items()},
            tickets={ticket.ticket_id: ticket for ticket in tickets},
            exposures=dict(data["exposures"]),
            value=float(data["value"]),
            rep_name=data["rep_name"],
            seen=_seen_from(data["seen"]),
            compact_at=data["compact_at"],
            last_at=data["last_at"],
            pending=_pending_from_list(data.get("pending", ())),
        )


@dataclass(slots=True)
class Claim:
    claim_id: str
    campaign_id: str
    product: str
    claim: str
    ships_within_hours: int | None
    valid_until: int | None
    published_at: int
    withdrawn_at: int | None = None
    #: a CONTRADICTION is out for the current stockout (cleared when stock comes back)
    contradicted: bool = False

    def active_at(self, moment: int) -> bool:
        return (self.withdrawn_at is None or moment < self.withdrawn_at) and (
            self.valid_until is None or moment <= self.valid_until
        )

    def shipping_window_ms(self) -> int:
        hours = 24 if self.claim == "IN_STOCK" or self.ships_within_hours is None else self.ships_within_hours
        return hours * 3_600_000

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class Catalog:
    claims: dict[str, Claim] = field(default_factory=dict)
    #: product -> units on hand (absent: never reported)
    stock: dict[str, int] = field(default_factory=dict)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_at: int = 0
    pending: dict[str, InputEvent] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "claims": [claim.to_dict() for claim in self.claims.values()],
            "stock": dict(self.stock),
            "seen": dict(self.seen),
            "last_at": self.last_at,
            "pending": _pending_to_list(self.pending),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        claims = [Claim(**item) for item in data["claims"]]
        return cls(
            claims={claim.claim_id: claim for claim in claims},
            stock=dict(data["stock"]),
            seen=_seen_from(data["seen"]),
            last_at=data["last_at"],
            pending=_pending_from_list(data.get("pending", ())),
        )


def _pending_to_list(pending: dict[str, InputEvent]) -> list[dict[str, Any]]:
    return [event_to_decoded(event) for event in pending.values()]


def _pending_from_list(items: Any) -> dict[str, InputEvent]:
    # Admitted once already: restored as stored, not judged again by limits configured since.
    events = [EVENT_TYPES[item.pop("type")](**item) for item in map(dict, items)]
    return {event.event_id: event for event in events}


def _seen_from(data: dict[str, Any]) -> dict[str, tuple[int, int]]:
    # State written before fingerprints were kept holds the time alone: fingerprint 0, "unknown".
    return {
        event_id: (entry, 0) if isinstance(entry, int) else (entry[0], entry[1])
        for event_id, entry in data.items()
    }
