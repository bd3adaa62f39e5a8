"""Typed input events (SPEC §3) and the validation of decoded-event dicts into them.

``parse_event`` sits on the replay hot path: every field is checked by a small table-driven loop with
exact ``type(...) is`` tests instead of a generic validation library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

MARKETING_TOPIC = "marketing.events"
SALES_TOPIC = "sales.events"
FULFILMENT_TOPIC = "fulfilment.events"
SERVICE_TOPIC = "service.events"

CLAIM_KINDS = frozenset({"IN_STOCK", "SHIPS_WITHIN"})
TICKET_CATEGORIES = frozenset(
    {"LATE", "MISSING_ITEMS", "NOT_AS_ADVERTISED", "MISSING_FEATURE", "SLOW_SERVICE", "OTHER"}
)
SERVICE_PROMISE_KINDS = frozenset({"CALLBACK", "REFUND"})

#: Fields holding epoch-millisecond timestamps in decoded dicts (ISO strings in JSON lines).
TIMESTAMP_FIELDS = ("occurred_at", "deliver_by", "due_at", "valid_until")


class InvalidEvent(ValueError):
    """A decoded event that breaks the contract; the message is one line naming the field."""


@dataclass(frozen=True, slots=True)
class ClaimPublished:
    event_id: str
    customer_id: str | None
    occurred_at: int
    source: str
    claim_id: str
    campaign_id: str
    product: str
    claim: str
    ships_within_hours: int | None
    valid_until: int | None
    text: str | None


@dataclass(frozen=True, slots=True)
class CustomerExposed:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    claim_id: str


@dataclass(frozen=True, slots=True)
class ClaimWithdrawn:
    event_id: str
    customer_id: str | None
    occurred_at: int
    source: str
    claim_id: str


@dataclass(frozen=True, slots=True)
class CommitmentMade:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    commitment_id: str
    deal_id: str
    rep_name: str | None
    product: str
    quantity: int
    deliver_by: int
    unit_price: float | None
    features: list[str]


@dataclass(frozen=True, slots=True)
class CommitmentApproved:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    commitment_id: str
    approver: str


@dataclass(frozen=True, slots=True)
class CommitmentAmended:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    commitment_id: str
    deliver_by: int | None
    quantity: int | None
    customer_informed: bool


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    order_id: str
    deal_id: str | None
    product: str
    quantity: int
    amount: float | None


@dataclass(frozen=True, slots=True)
class OrderShipped:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    order_id: str
    product: str
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderDelivered:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    order_id: str
    deal_id: str | None
    product: str
    quantity: int
    features: list[str]


@dataclass(frozen=True, slots=True)
class StockChanged:
    event_id: str
    customer_id: str | None
    occurred_at: int
    source: str
    product: str
    on_hand: int


@dataclass(frozen=True, slots=True)
class CallbackMade:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str


@dataclass(frozen=True, slots=True)
class RefundIssued:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str
    amount: float | None


@dataclass(frozen=True, slots=True)
class TicketOpened:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str
    category: str
    order_id: str | None
    deal_id: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class AgentReplied:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str
    agent_name: str | None
    text: str


@dataclass(frozen=True, slots=True)
class ServicePromiseMade:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    promise_id: str
    ticket_id: str
    kind: str
    due_at: int


@dataclass(frozen=True, slots=True)
class TicketResolved:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str


@dataclass(frozen=True, slots=True)
class SatisfactionRated:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str
    score: int


InputEvent = (
    ClaimPublished
    | CustomerExposed
    | ClaimWithdrawn
    | CommitmentMade
    | CommitmentApproved
    | CommitmentAmended
    | OrderPlaced
    | OrderShipped
    | OrderDelivered
    | StockChanged
    | CallbackMade
    | RefundIssued
    | TicketOpened
    | AgentReplied
    | ServicePromiseMade
    | TicketResolved
    | SatisfactionRated
)

#: Events that describe the company, not one customer: ``customer_id`` is None.
GLOBAL_EVENT_TYPES = (ClaimPublished, ClaimWithdrawn, StockChanged)

EVENT_TYPES: dict[str, type[InputEvent]] = {
    cls.__name__: cls
    for cls in (
        ClaimPublished,
        CustomerExposed,
        ClaimWithdrawn,
        CommitmentMade,
        CommitmentApproved,
        CommitmentAmended,
        OrderPlaced,
        OrderShipped,
        OrderDelivered,
        StockChanged,
        CallbackMade,
        RefundIssued,
        TicketOpened,
        AgentReplied,
        ServicePromiseMade,
        TicketResolved,
        SatisfactionRated,
    )
}

TOPIC_OF: dict[str, str] = {
    **dict.fromkeys(("ClaimPublished", "CustomerExposed", "ClaimWithdrawn"), MARKETING_TOPIC),
    **dict.fromkeys(("CommitmentMade", "CommitmentApproved", "CommitmentAmended"), SALES_TOPIC),
    **dict.fromkeys(
        ("OrderPlaced", "OrderShipped", "OrderDelivered", "StockChanged", "CallbackMade", "RefundIssued"),
        FULFILMENT_TOPIC,
    ),
    **dict.fromkeys(
        ("TicketOpened", "AgentReplied", "ServicePromiseMade", "TicketResolved", "SatisfactionRated"),
        SERVICE_TOPIC,
    ),
}

Checker = Callable[[str, Any], Any]


def _text(name: str, value: Any) -> str:
    if type(value) is str:
        return value
    raise InvalidEvent(f"field '{name}' must be a string, got {type(value).__name__}")


def _identifier(name: str, value: Any) -> str:
    if type(value) is str and value:
        return value
    if type(value) is str:
        raise InvalidEvent(f"field '{name}' must not be empty")
    raise InvalidEvent(f"field '{name}' must be a string, got {type(value).__name__}")


def _count(name: str, value: Any) -> int:
    if type(value) is int and value >= 0:
        return value
    raise InvalidEvent(f"field '{name}' must be a non-negative integer, got {value!r}")


def _timestamp(name: str, value: Any) -> int:
    if type(value) is int:
        return value
    raise InvalidEvent(f"field '{name}' must be a timestamp in epoch milliseconds, got {value!r}")


def _money(name: str, value: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise InvalidEvent(f"field '{name}' must be a number, got {value!r}")


def _flag(name: str, value: Any) -> bool:
    if type(value) is bool:
        return value
    raise InvalidEvent(f"field '{name}' must be true or false, got {value!r}")


def _texts(name: str, value: Any) -> list[str]:
    if type(value) is list and all(type(item) is str for item in value):
        return value
    raise InvalidEvent(f"field '{name}' must be a list of strings, got {value!r}")


def _score(name: str, value: Any) -> int:
    if type(value) is int and 1 <= value <= 5:
        return value
    raise InvalidEvent(f"field '{name}' must be an integer from 1 to 5, got {value!r}")


def _one_of(allowed: frozenset[str]) -> Checker:
    listed = "|".join(sorted(allowed))

    def check(name: str, value: Any) -> str:
        if value in allowed and type(value) is str:
            return value
        raise InvalidEvent(f"field '{name}' must be one of {listed}, got {value!r}")

    return check


#: Per field name: how its value is checked (names mean the same in every event type).
_CHECKS: dict[str, Checker] = {
    "event_id": _identifier,
    "customer_id": _identifier,
    "occurred_at": _timestamp,
    "source": _identifier,
    "claim_id": _identifier,
    "campaign_id": _identifier,
    "product": _identifier,
    "claim": _one_of(CLAIM_KINDS),
    "ships_within_hours": _count,
    "valid_until": _timestamp,
    "text": _text,
    "commitment_id": _identifier,
    "deal_id": _identifier,
    "rep_name": _identifier,
    "quantity": _count,
    "deliver_by": _timestamp,
    "unit_price": _money,
    "features": _texts,
    "approver": _identifier,
    "customer_informed": _flag,
    "order_id": _identifier,
    "amount": _money,
    "on_hand": _count,
    "ticket_id": _identifier,
    "category": _one_of(TICKET_CATEGORIES),
    "agent_name": _identifier,
    "promise_id": _identifier,
    "kind": _one_of(SERVICE_PROMISE_KINDS),
    "due_at": _timestamp,
    "score": _score,
}

_OPTIONAL_FIELDS: dict[str, frozenset[str]] = {
    "ClaimPublished": frozenset({"customer_id", "ships_within_hours", "valid_until", "text"}),
    "ClaimWithdrawn": frozenset({"customer_id"}),
    "StockChanged": frozenset({"customer_id"}),
    "CommitmentMade": frozenset({"rep_name", "unit_price"}),
    "CommitmentAmended": frozenset({"deliver_by", "quantity"}),
    "OrderPlaced": frozenset({"deal_id", "amount"}),
    "OrderDelivered": frozenset({"deal_id"}),
    "RefundIssued": frozenset({"amount"}),
    "TicketOpened": frozenset({"order_id", "deal_id", "text"}),
    "AgentReplied": frozenset({"agent_name"}),
}

_FieldSpec = tuple[str, Checker, bool]

_SPECS: dict[str, tuple[type[InputEvent], tuple[_FieldSpec, ...]]] = {
    type_name: (
        cls,
        tuple(
            (f.name, _CHECKS[f.name], f.name not in _OPTIONAL_FIELDS.get(type_name, frozenset()))
            for f in fields(cls)
        ),
    )
    for type_name, cls in EVENT_TYPES.items()
}


def parse_event(decoded: dict[str, Any]) -> InputEvent:
    """Validate a decoded-event dict (timestamps as epoch ms) into its typed event.

    Raises ``InvalidEvent`` with a one-line reason for an unknown type, a missing required field or a
    value of the wrong type. Unknown extra keys are ignored (a newer producer may add fields).
    """
    try:
        type_name = decoded["type"]
    except (KeyError, TypeError):
        raise InvalidEvent("missing field 'type'") from None
    spec = _SPECS.get(type_name) if type(type_name) is str else None
    if spec is None:
        raise InvalidEvent(f"unknown event type {type_name!r}")
    cls, field_specs = spec
    values = []
    get = decoded.get
    for name, check, required in field_specs:
        value = get(name)
        if value is None:
            if required:
                raise InvalidEvent(f"{type_name}: missing field '{name}'")
            values.append(None)
        else:
            try:
                values.append(check(name, value))
            except InvalidEvent as error:
                raise InvalidEvent(f"{type_name}: {error}") from None
    if cls in GLOBAL_EVENT_TYPES:
        values[1] = None
    return cls(*values)


def event_to_decoded(event: InputEvent) -> dict[str, Any]:
    """The decoded-event dict of a typed event (the inverse of ``parse_event``)."""
    decoded: dict[str, Any] = {"type": type(event).__name__}
    for name in event.__slots__:
        decoded[name] = getattr(event, name)
    return decoded
