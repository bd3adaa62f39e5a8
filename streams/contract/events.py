"""Typed input events (SPEC §3) and the validation of decoded-event dicts into them.

``parse_event`` sits on the replay hot path: every field is checked by code generated per event type
(and per ``ValueLimits``), exact ``type(...) is`` tests and the bounds as literals, instead of a
generic validation library. Both forms of an event (Avro-decoded dicts and JSON lines) end here, so
there is one definition of a valid value (SPEC §3 "Valid values").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from hashlib import blake2b
from typing import Any

import orjson

from streams.contract.frozen import fast_init
from streams.contract.timestamps import InvalidEvent, iso_to_ms_or_none, ms_to_iso, to_epoch_ms

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

DAY_MS = 86_400_000
#: the largest value an Avro ``int`` holds: a larger quantity could only come from a JSON line
MAX_AVRO_INT = 2**31 - 1
_FIRST_ISO_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z: the first moment ISO-8601 can write
_LAST_ISO_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z: the first moment it cannot

#: Deadline fields: each lies within ``deadline_within_days`` of its own event's ``occurred_at``.
DEADLINE_FIELDS = frozenset({"deliver_by", "due_at", "valid_until"})


@dataclass(frozen=True, slots=True)
class ValueLimits:
    """What a valid value is (SPEC §3 "Valid values"), for JSON lines and Avro records alike.

    Bounds are inclusive, except ``timestamps_before_ms``: every timestamp lies in
    [``timestamps_from_ms``, ``timestamps_before_ms``). The defaults are SPEC's; the ``[limits]`` table
    of the engine config overrides them. Building one generates its parsers (a few milliseconds), so
    a parse costs nothing extra whatever the limits.
    """

    timestamps_from_ms: int = 946_684_800_000  # 2000-01-01T00:00:00Z
    timestamps_before_ms: int = 4_102_444_800_000  # 2100-01-01T00:00:00Z
    #: 5 years: five of 365 days and the leap day any five consecutive years contain
    deadline_within_days: int = 1826
    max_quantity: int = MAX_AVRO_INT
    #: ids and names: every string field but ``text`` and the enums; also each item of ``features``
    max_id_length: int = 256
    max_text_length: int = 10_000
    max_features: int = 100
    # (strict parsers, loose parsers) by type name: generated code with these bounds as literals
    _parsers: tuple[dict[str, Parser], dict[str, Parser]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, low, high in _LIMIT_RANGES:
            value = getattr(self, name)
            if type(value) is int and name.endswith("_ms") and not low <= value <= high:
                shown = f"from {ms_to_iso(low)} to {ms_to_iso(high)}, got {_shown_ms(value)}"
                raise ValueError(f"'{name}' must be a moment {shown}")
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"'{name}' must be an integer from {low} to {high}, got {value!r}")
        if self.timestamps_from_ms >= self.timestamps_before_ms:
            raise ValueError("'timestamps_from_ms' must come before 'timestamps_before_ms'")
        strict = {name: _make_parser(name, cls, False, self) for name, cls in EVENT_TYPES.items()}
        loose = {name: _make_parser(name, cls, True, self) for name, cls in EVENT_TYPES.items()}
        object.__setattr__(self, "_parsers", (strict, loose))

    @property
    def deadline_within_ms(self) -> int:
        return self.deadline_within_days * DAY_MS

    @property
    def max_hours(self) -> int:
        """A claim's window (``ships_within_hours``) is a deadline too: it spans at most the same."""
        return self.deadline_within_days * 24


_LIMIT_RANGES = (
    # Not before 1970: the scorecard stores times as UInt64; not past what ISO-8601 can write.
    ("timestamps_from_ms", 0, _LAST_ISO_MS - 1),
    ("timestamps_before_ms", 1, _LAST_ISO_MS - 1),
    ("deadline_within_days", 0, 3_652_425),
    # A quantity the Avro int cannot carry would be valid in JSON lines only.
    ("max_quantity", 0, MAX_AVRO_INT),
    ("max_id_length", 1, MAX_AVRO_INT),
    ("max_text_length", 0, MAX_AVRO_INT),
    ("max_features", 0, MAX_AVRO_INT),
)

Checker = Callable[[str, Any, ValueLimits], Any]
Parser = Callable[[dict[str, Any]], InputEvent]


def _shown(value: Any) -> str:
    """A short form of a rejected value for a reason: a reason goes into every dead letter and log."""
    if type(value) is str:
        return repr(value) if len(value) <= 60 else f"{value[:40]!r}… ({len(value)} characters)"
    if type(value) is list or type(value) is dict:
        return f"a {type(value).__name__} of {len(value)} items"
    if type(value) is int and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if value is None or type(value) in (bool, int, float):
        return repr(value)
    return f"a {type(value).__name__}"


def _shown_ms(ms: int) -> str:
    return ms_to_iso(ms) if _FIRST_ISO_MS <= ms < _LAST_ISO_MS else f"{ms} ms"


def _text(name: str, value: Any, limits: ValueLimits) -> str:
    if type(value) is not str:
        raise InvalidEvent(f"field '{name}' must be a string, got {type(value).__name__}")
    if len(value) > limits.max_text_length:
        raise InvalidEvent(
            f"field '{name}' must be at most {limits.max_text_length} characters, got {len(value)}"
        )
    return value


def _identifier(name: str, value: Any, limits: ValueLimits) -> str:
    if type(value) is not str:
        raise InvalidEvent(f"field '{name}' must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidEvent(f"field '{name}' must not be empty")
    if len(value) > limits.max_id_length:
        raise InvalidEvent(
            f"field '{name}' must be at most {limits.max_id_length} characters, got {len(value)}"
        )
    return value


def _integer_up_to(name: str, value: Any, highest: int) -> int:
    if type(value) is int and 0 <= value <= highest:
        return value
    raise InvalidEvent(f"field '{name}' must be an integer from 0 to {highest}, got {_shown(value)}")


def _count(name: str, value: Any, limits: ValueLimits) -> int:
    return _integer_up_to(name, value, limits.max_quantity)


def _hours(name: str, value: Any, limits: ValueLimits) -> int:
    return _integer_up_to(name, value, limits.max_hours)


def _timestamp(name: str, value: Any, limits: ValueLimits) -> int:
    if type(value) is not int:
        raise InvalidEvent(f"field '{name}' must be a timestamp in epoch milliseconds, got {_shown(value)}")
    if not limits.timestamps_from_ms <= value < limits.timestamps_before_ms:
        raise InvalidEvent(
            f"field '{name}' must be from {ms_to_iso(limits.timestamps_from_ms)} and before "
            f"{ms_to_iso(limits.timestamps_before_ms)}, got {_shown_ms(value)}"
        )
    return value


def _deadline(name: str, value: Any, limits: ValueLimits, occurred_at: int) -> int:
    value = _timestamp(name, value, limits)
    days = limits.deadline_within_days
    if value > occurred_at + limits.deadline_within_ms:
        raise InvalidEvent(
            f"field '{name}' must be at most {days} days after occurred_at, got {_shown_ms(value)}"
        )
    if value < occurred_at - limits.deadline_within_ms:
        raise InvalidEvent(
            f"field '{name}' must be at most {days} days before occurred_at, got {_shown_ms(value)}"
        )
    return value


def _money(name: str, value: Any, limits: ValueLimits) -> float:
    # An int compares with a float exactly: one past the largest float is as infinite as JSON's 1e999.
    if type(value) is int and 0 <= value <= _FLOAT_MAX:
        return float(value)
    if type(value) is float and 0.0 <= value <= _FLOAT_MAX:  # NaN fails every comparison
        return value
    raise InvalidEvent(f"field '{name}' must be a finite number >= 0, got {_shown(value)}")


def _flag(name: str, value: Any, limits: ValueLimits) -> bool:
    if type(value) is bool:
        return value
    raise InvalidEvent(f"field '{name}' must be true or false, got {_shown(value)}")


def _names(name: str, value: Any, limits: ValueLimits) -> list[str]:
    if type(value) is not list:
        raise InvalidEvent(f"field '{name}' must be a list of strings, got {_shown(value)}")
    if len(value) > limits.max_features:
        raise InvalidEvent(f"field '{name}' must have at most {limits.max_features} items, got {len(value)}")
    for index, item in enumerate(value):
        if type(item) is not str:
            raise InvalidEvent(f"field '{name}' must be a list of strings, item {index} is {_shown(item)}")
        if len(item) > limits.max_id_length:
            limit = limits.max_id_length
            raise InvalidEvent(
                f"field '{name}' item {index} must be at most {limit} characters, got {len(item)}"
            )
    return value


def _score(name: str, value: Any, limits: ValueLimits) -> int:
    if type(value) is int and 1 <= value <= 5:
        return value
    raise InvalidEvent(f"field '{name}' must be an integer from 1 to 5, got {_shown(value)}")


def _one_of(allowed: frozenset[str]) -> Checker:
    listed = "|".join(sorted(allowed))

    def check(name: str, value: Any, limits: ValueLimits) -> str:
        if type(value) is str and value in allowed:  # a list or dict is unhashable
            return value
        raise InvalidEvent(f"field '{name}' must be one of {listed}, got {_shown(value)}")

    return check


_FLOAT_MAX = sys.float_info.max
_ENUMS = {"claim": CLAIM_KINDS, "category": TICKET_CATEGORIES, "kind": SERVICE_PROMISE_KINDS}

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
    "ships_within_hours": _hours,
    "valid_until": _timestamp,
    "text": _text,
    "commitment_id": _identifier,
    "deal_id": _identifier,
    "rep_name": _identifier,
    "quantity": _count,
    "deliver_by": _timestamp,
    "unit_price": _money,
    "features": _names,
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


def _fast_test(check: Checker, name: str, var: str, limits: ValueLimits) -> str:
    """The exact test of a valid value in generated parsers, with the bounds as literals: a few
    comparisons per field. ``_slow_check`` says what is wrong with a value that fails it."""
    if check is _timestamp:
        test = f"type({var}) is int and {limits.timestamps_from_ms} <= {var} < {limits.timestamps_before_ms}"
        if name in DEADLINE_FIELDS:
            span = limits.deadline_within_ms
            test += f" and v_occurred_at - {span} <= {var} <= v_occurred_at + {span}"
        return test
    if check is _money:
        return f"type({var}) is float and 0.0 <= {var} <= {_FLOAT_MAX!r}"
    tests = {
        _identifier: f"type({var}) is str and 0 < len({var}) <= {limits.max_id_length}",
        _text: f"type({var}) is str and len({var}) <= {limits.max_text_length}",
        _count: f"type({var}) is int and 0 <= {var} <= {limits.max_quantity}",
        _hours: f"type({var}) is int and 0 <= {var} <= {limits.max_hours}",
        _flag: f"type({var}) is bool",
        _names: f"type({var}) is list and len({var}) <= {limits.max_features}"
        f" and (not {var} or _all_names({var}))",
        _score: f"type({var}) is int and 1 <= {var} <= 5",
    }
    if check in tests:
        return tests[check]
    return f"type({var}) is str and {var} in _allowed_{name}"


def _slow_check(
    type_name: str,
    name: str,
    value: Any,
    required: bool,
    loose_time: bool,
    limits: ValueLimits,
    occurred_at: int | None,
) -> Any:
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
        if occurred_at is not None:
            return _deadline(name, value, limits, occurred_at)
        return check(name, value, limits)
    except InvalidEvent as error:
        raise InvalidEvent(f"{type_name}: {error}") from None


def _make_parser(type_name: str, cls: type[InputEvent], loose_time: bool, limits: ValueLimits) -> Parser:
    """Straight-line validation code for one event type: this is the replay hot path."""
    optional = _OPTIONAL_FIELDS.get(type_name, frozenset())
    max_id_length = limits.max_id_length
    lines = ["def parse(decoded, _get=dict.get):"]
    names = []
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_slow": _slow_check,
        "_limits": limits,
        "_all_names": lambda items: all(type(item) is str and len(item) <= max_id_length for item in items),
        "_iso": iso_to_ms_or_none,
    }
    for spec in fields(cls):
        name = spec.name
        check = _CHECKS[name]
        if name == "customer_id" and cls in GLOBAL_EVENT_TYPES:
            # Ignored (the catalog belongs to no customer), but held to what Avro's ["null", "string"]
            # would carry: a JSON line is not valid for a value no Avro record could hold.
            slow = f"_slow({type_name!r}, {name!r}, x, False, {loose_time}, _limits, None)"
            lines.append(f"    x = _get(decoded, {name!r})")
            lines.append(f"    if x is not None and not ({_fast_test(check, name, 'x', limits)}):")
            lines.append(f"        {slow}")
            names.append("None")
            continue
        if name in _ENUMS:
            namespace[f"_allowed_{name}"] = _ENUMS[name]
        required = name not in optional
        # A deadline is judged against its own event's occurred_at, parsed before it (field order).
        occurred_at = "v_occurred_at" if name in DEADLINE_FIELDS else "None"
        if occurred_at != "None" and "v_occurred_at" not in names:
            raise AssertionError(f"{type_name}: '{name}' comes before 'occurred_at'")
        slow = f"_slow({type_name!r}, {name!r}, x, {required}, {loose_time}, _limits, {occurred_at})"
        if required:  # present in valid input: a subscript is cheaper than a call of dict.get
            lines += ["    try:", f"        x = decoded[{name!r}]", "    except KeyError:"]
            lines.append("        x = None")
        else:
            lines.append(f"    x = _get(decoded, {name!r})")
        if loose_time and check is _timestamp:
            # JSON lines carry ISO strings: read in one call; _slow says what is wrong with a bad one.
            lines.append("    y = x if type(x) is int else _iso(x) if type(x) is str else None")
            lines.append(f"    v_{name} = y if {_fast_test(check, name, 'y', limits)} else {slow}")
        else:
            lines.append(f"    v_{name} = x if {_fast_test(check, name, 'x', limits)} else {slow}")
        names.append(f"v_{name}")
    lines.append(f"    return _cls({', '.join(names)})")
    exec("\n".join(lines), namespace)  # generated from the field tables above, nothing from input
    return namespace["parse"]


def _parser_for(decoded: Any, parsers: dict[str, Parser]) -> Parser:
    try:
        type_name = decoded["type"]
    except (KeyError, TypeError):
        raise InvalidEvent("missing field 'type'") from None
    parser = parsers.get(type_name) if type(type_name) is str else None
    if parser is None:
        raise InvalidEvent(f"unknown event type {_shown(type_name)}")
    return parser


#: SPEC's limits; an engine config without a ``[limits]`` table has these.
DEFAULT_LIMITS = ValueLimits()


def parse_event(decoded: dict[str, Any], limits: ValueLimits = DEFAULT_LIMITS) -> InputEvent:
    """Validate a decoded-event dict (timestamps as int epoch ms) into its typed event.

    Raises ``InvalidEvent`` with a one-line reason naming the field for an unknown type, a missing
    required field, a value of the wrong type or one outside ``limits``. Unknown extra keys are
    ignored (a newer producer may add fields).
    """
    return _parser_for(decoded, limits._parsers[0])(decoded)


def parse_loose_event(decoded: dict[str, Any], limits: ValueLimits = DEFAULT_LIMITS) -> InputEvent:
    """Like ``parse_event``, but timestamps may also be ISO-8601 strings (JSON lines) or ``datetime``
    objects (fastavro's timestamp-millis)."""
    # The common case in two lookups; _parser_for finds the one-line reason for anything else.
    parsers = limits._parsers[1]
    type_name = decoded.get("type") if type(decoded) is dict else None
    parser = parsers.get(type_name) if type(type_name) is str else None
    if parser is None:
        parser = _parser_for(decoded, parsers)
    return parser(decoded)


def event_to_decoded(event: InputEvent) -> dict[str, Any]:
    """The decoded-event dict of a typed event (the inverse of ``parse_event``)."""
    decoded: dict[str, Any] = {"type": type(event).__name__}
    for name in event.__slots__:
        decoded[name] = getattr(event, name)
    return decoded


def fingerprint(event: InputEvent) -> int:
    """A 64-bit digest of everything in ``event``, its type included: the same content gives the same
    number in any process, a change in any field another. What tells a redelivered event from a
    conflicting one with the same ``event_id`` (SPEC §3), at the cost of one small hash.

    The bytes hashed are the event's JSON as orjson writes it (fields in declaration order, floats in
    their shortest round-trip form), after its type name.
    """
    digest = blake2b(type(event).__name__.encode(), digest_size=8)
    digest.update(orjson.dumps(event))
    return int.from_bytes(digest.digest(), "big")
