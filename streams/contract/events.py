"""Typed input events (SPEC §3) and the validation of decoded-event dicts into them.

``parse_event`` sits on the replay hot path: every field is checked by a small table-driven loop with
exact ``type(...) is`` tests instead of a generic validation library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from streams.contract.frozen import fast_init
from streams.contract.timestamps import InvalidEvent, iso_to_ms_or_none, to_epoch_ms

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


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class CustomerExposed:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    claim_id: str


@fast_init
@dataclass(frozen=True, slots=True)
class ClaimWithdrawn:
    event_id: str
    customer_id: str | None
    occurred_at: int
    source: str
    claim_id: str


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class CommitmentApproved:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    commitment_id: str
    approver: str


@fast_init
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


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class OrderShipped:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    order_id: str
    product: str
    quantity: int


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class StockChanged:
    event_id: str
    customer_id: str | None
    occurred_at: int
    source: str
    product: str
    on_hand: int


@fast_init
@dataclass(frozen=True, slots=True)
class CallbackMade:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str


@fast_init
@dataclass(frozen=True, slots=True)
class RefundIssued:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str
    amount: float | None


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class AgentReplied:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str
    agent_name: str | None
    text: str


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class TicketResolved:
    event_id: str
    customer_id: str
    occurred_at: int
    source: str
    ticket_id: str


@fast_init
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
        if type(value) is str and value in allowed:  # a list or dict is unhashable
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

#: Per checker: the exact test of a valid value in generated parsers (``x`` is the value).
_FAST_TESTS: dict[Checker, str] = {
    _identifier: "type(x) is str and x",
    _text: "type(x) is str",
    _count: "type(x) is int and x >= 0",
    _timestamp: "type(x) is int",
    _money: "type(x) is float",
    _flag: "type(x) is bool",
    _texts: "type(x) is list and (not x or _all_text(x))",
    _score: "type(x) is int and 1 <= x <= 5",
}


def _all_text(values: list[Any]) -> bool:
    return all(type(value) is str for value in values)


def _slow_check(type_name: str, name: str, value: Any, required: bool, loose_time: bool) -> Any:
    """The full check of a value that failed the fast test: None, a coercion, or a one-line error."""
    if value is None:
        if required:
            raise InvalidEvent(f"{type_name}: missing field '{name}'")
        return None
    check = _CHECKS[name]
    if loose_time and check is _timestamp:
        try:
            value = to_epoch_ms(value)
        except InvalidEvent as error:
            raise InvalidEvent(f"{type_name}: field '{name}': {error}") from None
    try:
        return check(name, value)
    except InvalidEvent as error:
        raise InvalidEvent(f"{type_name}: {error}") from None


Parser = Callable[[dict[str, Any]], InputEvent]


def _make_parser(type_name: str, cls: type[InputEvent], loose_time: bool) -> Parser:
    """Straight-line validation code for one event type: this is the replay hot path."""
    optional = _OPTIONAL_FIELDS.get(type_name, frozenset())
    lines = ["def parse(decoded, _get=dict.get):"]
    names = []
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_slow": _slow_check,
        "_all_text": _all_text,
        "_iso": iso_to_ms_or_none,
    }
    for field in fields(cls):
        name = field.name
        check = _CHECKS[name]
        if name == "customer_id" and cls in GLOBAL_EVENT_TYPES:
            names.append("None")
            continue
        if check in _FAST_TESTS:
            test = _FAST_TESTS[check]
        else:
            namespace[f"_allowed_{name}"] = _ENUMS[name]
            test = f"type(x) is str and x in _allowed_{name}"
        required = name not in optional
        slow = f"_slow({type_name!r}, {name!r}, x, {required}, {loose_time})"
        if required:  # present in valid input: a subscript is cheaper than a call of dict.get
            lines += ["    try:", f"        x = decoded[{name!r}]", "    except KeyError:"]
            lines.append("        x = None")
        else:
            lines.append(f"    x = _get(decoded, {name!r})")
        if loose_time and check is _timestamp:
            # JSON lines carry ISO strings: read in one call; _slow says what is wrong with a bad one.
            lines.append(f"    v_{name} = x if {test} else _iso(x) if type(x) is str else None")
            lines.append(f"    if v_{name} is None:")
            lines.append(f"        v_{name} = {slow}")
        else:
            lines.append(f"    v_{name} = x if {test} else {slow}")
        names.append(f"v_{name}")
    lines.append(f"    return _cls({', '.join(names)})")
    exec("\n".join(lines), namespace)  # generated from the field tables above, nothing from input
    return namespace["parse"]


_ENUMS = {"claim": CLAIM_KINDS, "category": TICKET_CATEGORIES, "kind": SERVICE_PROMISE_KINDS}
_PARSERS: dict[str, Parser] = {name: _make_parser(name, cls, False) for name, cls in EVENT_TYPES.items()}
_LOOSE_PARSERS: dict[str, Parser] = {name: _make_parser(name, cls, True) for name, cls in EVENT_TYPES.items()}


def _parser_for(decoded: Any, parsers: dict[str, Parser]) -> Parser:
    try:
        type_name = decoded["type"]
    except (KeyError, TypeError):
        raise InvalidEvent("missing field 'type'") from None
    parser = parsers.get(type_name) if type(type_name) is str else None
    if parser is None:
        raise InvalidEvent(f"unknown event type {type_name!r}")
    return parser


def parse_event(decoded: dict[str, Any]) -> InputEvent:
    """Validate a decoded-event dict (timestamps as int epoch ms) into its typed event.

    Raises ``InvalidEvent`` with a one-line reason for an unknown type, a missing required field or a
    value of the wrong type. Unknown extra keys are ignored (a newer producer may add fields).
    """
    return _parser_for(decoded, _PARSERS)(decoded)


def parse_loose_event(decoded: dict[str, Any]) -> InputEvent:
    """Like ``parse_event``, but timestamps may also be ISO-8601 strings (JSON lines) or ``datetime``
    objects (fastavro's timestamp-millis)."""
    # The common case in two lookups; _parser_for finds the one-line reason for anything else.
    type_name = decoded.get("type") if type(decoded) is dict else None
    parser = _LOOSE_PARSERS.get(type_name) if type(type_name) is str else None
    if parser is None:
        parser = _parser_for(decoded, _LOOSE_PARSERS)
    return parser(decoded)


def event_to_decoded(event: InputEvent) -> dict[str, Any]:
    """The decoded-event dict of a typed event (the inverse of ``parse_event``)."""
    decoded: dict[str, Any] = {"type": type(event).__name__}
    for name in event.__slots__:
        decoded[name] = getattr(event, name)
    return decoded
