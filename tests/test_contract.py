"""Validation of decoded events and the JSON-lines form (SPEC §3)."""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.contract import (
    EVENT_TYPES,
    GLOBAL_EVENT_TYPES,
    TIMESTAMP_FIELDS,
    TOPIC_OF,
    CommitmentMade,
    InputEvent,
    InvalidEvent,
    StockChanged,
    ValueLimits,
    decode_json_line,
    event_from_json_line,
    event_to_decoded,
    event_to_json_line,
    fingerprint,
    iso_to_ms,
    ms_to_iso,
    normalise_timestamps,
    parse_event,
)
from tests.codec_helpers import decoded_form, fixture_lines, json_line_of, through_avro, through_json_line

T2026 = 1_772_359_200_000  # 2026-03-01T10:00:00Z
COMMITMENT = {
    "type": "CommitmentMade",
    "event_id": "e1",
    "customer_id": "c1",
    "occurred_at": 1_772_359_200_000,
    "source": "salesforce",
    "commitment_id": "k1",
    "deal_id": "d1",
    "rep_name": None,
    "product": "widget",
    "quantity": 20,
    "deliver_by": 1_772_532_000_000,
    "unit_price": 49,
    "features": ["SSO"],
}


def test_a_valid_event_becomes_its_typed_record() -> None:
    event = parse_event(dict(COMMITMENT))
    assert isinstance(event, CommitmentMade)
    assert (event.quantity, event.unit_price, event.rep_name, event.features) == (20, 49.0, None, ["SSO"])
    assert event_to_decoded(event) == {**COMMITMENT, "unit_price": 49.0}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "Nope"}, "unknown event type 'Nope'"),
        ({"quantity": None}, "CommitmentMade: missing field 'quantity'"),
        (
            {"quantity": "20"},
            "CommitmentMade: field 'quantity' must be an integer from 0 to 2147483647, got '20'",
        ),
        ({"quantity": True}, "must be an integer from 0 to 2147483647, got True"),
        ({"quantity": -1}, "must be an integer from 0 to 2147483647, got -1"),
        ({"occurred_at": 1.5}, "field 'occurred_at' must be a timestamp in epoch milliseconds"),
        ({"features": ["SSO", 3]}, "field 'features' must be a list of strings"),
        ({"customer_id": ""}, "field 'customer_id' must not be empty"),
        ({"unit_price": "cheap"}, "field 'unit_price' must be a finite number >= 0, got 'cheap'"),
    ],
)
def test_a_bad_event_is_rejected_with_a_one_line_reason(change: dict, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event({**COMMITMENT, **change})
    assert reason in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("decoded", "reason"),
    [
        ({"type": "TicketOpened", "category": "ANGRY"}, "field 'category' must be one of"),
        ({"type": "SatisfactionRated", "score": 6}, "field 'score' must be an integer from 1 to 5"),
        ({"type": "ServicePromiseMade", "kind": "EMAIL"}, "field 'kind' must be one of CALLBACK|REFUND"),
        ({"type": "ClaimPublished", "claim": "CHEAP"}, "field 'claim' must be one of IN_STOCK|SHIPS_WITHIN"),
    ],
)
def test_enums_are_checked(decoded: dict, reason: str) -> None:
    base = {"event_id": "e", "customer_id": "c", "occurred_at": T2026, "source": "s", "ticket_id": "t"}
    base.update(
        promise_id="p",
        due_at=T2026 + 1,
        claim_id="x",
        campaign_id="y",
        product="p",
        score=5,
        category="OTHER",
    )
    with pytest.raises(InvalidEvent, match=reason):
        parse_event({**base, "kind": "CALLBACK", "claim": "IN_STOCK", **decoded})


def test_global_events_carry_no_customer() -> None:
    stock = parse_event(
        {
            "type": "StockChanged",
            "event_id": "g",
            "occurred_at": T2026,
            "source": "erp",
            "product": "p",
            "on_hand": 0,
        }
    )
    assert isinstance(stock, StockChanged) and stock.customer_id is None


def test_every_type_has_a_topic() -> None:
    assert set(TOPIC_OF) == set(EVENT_TYPES)
    assert TOPIC_OF["CommitmentMade"] == "sales.events" and TOPIC_OF["RefundIssued"] == "fulfilment.events"


def test_json_lines_use_iso_timestamps_both_ways() -> None:
    line = (
        b'{"type":"StockChanged","event_id":"g","occurred_at":"2026-03-01T10:00:00.250Z",'
        b'"source":"erp","product":"p","on_hand":3,"new_field":1}'
    )
    event = event_from_json_line(line)
    assert event.occurred_at == iso_to_ms("2026-03-01T10:00:00Z") + 250
    assert event_to_json_line(event) == (
        b'{"type":"StockChanged","event_id":"g","occurred_at":"2026-03-01T10:00:00.250Z",'
        b'"source":"erp","product":"p","on_hand":3}'
    )
    assert ms_to_iso(iso_to_ms("2026-03-01T12:00:00+02:00")) == "2026-03-01T10:00:00Z"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"type":"StockChanged","occurred_at":"yesterday"}', "not an ISO-8601 timestamp: 'yesterday'"),
        (b'{"type":"StockChanged","occurred_at":"2026-03-01T10:00:00"}', "timestamp without a time zone"),
    ],
)
def test_bad_json_lines_are_rejected(line: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode_json_line(line)


def test_fastavro_datetimes_become_epoch_ms() -> None:
    decoded = normalise_timestamps({"occurred_at": datetime(2026, 3, 1, 10, 0, 0, 250_000, tzinfo=UTC)})
    assert decoded["occurred_at"] == iso_to_ms("2026-03-01T10:00:00.250Z")


def test_json_line_errors_name_the_field() -> None:
    line = b'{"type":"StockChanged","event_id":"g","occurred_at":"soon","source":"erp","product":"p"}'
    with pytest.raises(
        InvalidEvent, match="StockChanged: field 'occurred_at': not an ISO-8601 timestamp: 'soon'"
    ):
        event_from_json_line(line)


def test_events_are_frozen() -> None:
    event = parse_event(dict(COMMITMENT))
    with pytest.raises(AttributeError):
        event.quantity = 1  # type: ignore[misc]


def test_timestamps_floor_to_the_millisecond_before_and_after_1970() -> None:
    assert iso_to_ms("2026-03-01T10:00:00.250999Z") == iso_to_ms("2026-03-01T10:00:00Z") + 250
    assert iso_to_ms("1969-12-31T23:59:59.999500Z") == -1
    naive = datetime(1969, 12, 31, 23, 59, 59, 999_500)  # fastavro's timestamp-millis, read as UTC
    assert normalise_timestamps({"occurred_at": naive})["occurred_at"] == -1


# -- Valid values (SPEC §3): one definition for JSON lines and Avro records -------------------------

DAY = 86_400_000
FIVE_YEARS = 1826 * DAY
FROM_2000 = iso_to_ms("2000-01-01T00:00:00Z")
BEFORE_2100 = iso_to_ms("2100-01-01T00:00:00Z")
LARGEST_FLOAT = sys.float_info.max


def fixture(type_name: str, **changes: Any) -> dict[str, Any]:
    """A valid decoded event of ``type_name`` from the fixture (every field, timestamps in ms)."""
    line = next(line for line in fixture_lines() if line["type"] == type_name)
    return {**decoded_form(line), **changes}


def iso(text: str) -> int:
    return iso_to_ms(text)


#: The 9 absurd-but-well-formed records of issue 15 and the field each reason must name.
ABSURD = [
    ("deadline in year 1", fixture("CommitmentMade", deliver_by=iso("0001-01-01T00:00:00Z")), "deliver_by"),
    (
        "deadline in year 9999",
        fixture("CommitmentMade", deliver_by=iso("9999-12-31T23:59:59Z")),
        "deliver_by",
    ),
    ("quantity 2^40", fixture("CommitmentMade", quantity=2**40), "quantity"),
    ("quantity -3", fixture("OrderPlaced", quantity=-3), "quantity"),
    ("an event from 1900", fixture("TicketOpened", occurred_at=iso("1900-01-01T00:00:00Z")), "occurred_at"),
    ("a 200 kB name", fixture("CommitmentMade", rep_name="n" * 200_000), "rep_name"),
    ("20,000 features", fixture("OrderDelivered", features=["SSO"] * 20_000), "features"),
    (
        "service promise due in year 1",
        fixture("ServicePromiseMade", due_at=iso("0001-01-01T00:00:00Z")),
        "due_at",
    ),
    ("an infinite amount", fixture("OrderPlaced", amount=math.inf), "amount"),
]


def assert_rejected_naming(outcome: InputEvent | str, field: str) -> None:
    assert isinstance(outcome, str), f"accepted: {outcome!r}"
    assert f"field '{field}'" in outcome or f"{field} is" in outcome, (
        outcome
    )  # the codec says "...quantity is"
    assert "\n" not in outcome and len(outcome) < 400, outcome  # goes into every dead letter and log line


@pytest.mark.parametrize(
    ("decoded", "field"), [case[1:] for case in ABSURD], ids=[case[0] for case in ABSURD]
)
def test_absurd_records_are_rejected_by_both_paths_naming_the_field(
    decoded: dict[str, Any], field: str
) -> None:
    assert_rejected_naming(through_json_line(decoded), field)
    avro = through_avro(decoded)
    assert_rejected_naming(avro, field)
    if avro.startswith("codec: "):  # an Avro int cannot hold 2^40: the encoder refuses it first ...
        assert field == "quantity"
        with pytest.raises(InvalidEvent, match=f"field '{field}'"):  # ... and the contract would too
            parse_event(decoded)


#: (event type, field, the last valid value, the first invalid one): bounds are inclusive, timestamps
#: lie in [2000-01-01, 2100-01-01), a deadline within 1826 days of its event's occurred_at.
OCCURRED = fixture("CommitmentMade")["occurred_at"]
EDGES = [
    ("OrderPlaced", "occurred_at", FROM_2000, FROM_2000 - 1),
    ("OrderPlaced", "occurred_at", BEFORE_2100 - 1, BEFORE_2100),
    ("CommitmentMade", "deliver_by", OCCURRED + FIVE_YEARS, OCCURRED + FIVE_YEARS + 1),
    ("CommitmentMade", "deliver_by", OCCURRED - FIVE_YEARS, OCCURRED - FIVE_YEARS - 1),
    ("CommitmentAmended", "deliver_by", OCCURRED + FIVE_YEARS, OCCURRED + FIVE_YEARS + 1),
    ("ServicePromiseMade", "due_at", OCCURRED + FIVE_YEARS, OCCURRED + FIVE_YEARS + 1),
    ("ServicePromiseMade", "due_at", OCCURRED - FIVE_YEARS, OCCURRED - FIVE_YEARS - 1),
    ("ClaimPublished", "valid_until", OCCURRED + FIVE_YEARS, OCCURRED + FIVE_YEARS + 1),
    ("ClaimPublished", "valid_until", OCCURRED - FIVE_YEARS, OCCURRED - FIVE_YEARS - 1),
    ("ClaimPublished", "ships_within_hours", 1826 * 24, 1826 * 24 + 1),
    ("CommitmentMade", "quantity", 2**31 - 1, 2**31),
    ("CommitmentMade", "quantity", 0, -1),
    ("CommitmentAmended", "quantity", 2**31 - 1, 2**31),
    ("OrderShipped", "quantity", 0, -1),
    ("StockChanged", "on_hand", 2**31 - 1, 2**31),
    ("StockChanged", "on_hand", 0, -1),
    ("OrderPlaced", "amount", 0.0, -5e-324),
    ("OrderPlaced", "amount", LARGEST_FLOAT, math.inf),
    ("OrderPlaced", "amount", 980.0, math.nan),
    ("RefundIssued", "amount", LARGEST_FLOAT, -math.inf),
    ("CommitmentMade", "unit_price", 0.0, -0.01),
    ("CommitmentMade", "unit_price", LARGEST_FLOAT, math.inf),
    ("SatisfactionRated", "score", 1, 0),
    ("SatisfactionRated", "score", 5, 6),
    ("CommitmentMade", "features", ["f"] * 100, ["f"] * 101),
    ("OrderDelivered", "features", ["f" * 256], ["f" * 257]),
    ("TicketOpened", "text", "t" * 10_000, "t" * 10_001),
    ("AgentReplied", "text", "t" * 10_000, "t" * 10_001),
    ("ClaimPublished", "text", "t" * 10_000, "t" * 10_001),
    *[
        (line["type"], name, "i" * 256, "i" * 257)
        for line in fixture_lines()
        for name, value in line.items()
        if type(value) is str
        and name not in {"type", "text", "claim", "category", "kind"}
        and name not in TIMESTAMP_FIELDS
    ],
]


@pytest.mark.parametrize(
    ("type_name", "field", "last_valid", "first_invalid"),
    EDGES,
    ids=[f"{edge[0]}.{edge[1]}-{i}" for i, edge in enumerate(EDGES)],
)
def test_each_bound_is_inclusive_on_both_paths(
    type_name: str, field: str, last_valid: Any, first_invalid: Any
) -> None:
    # Deadlines are judged from the event's own occurred_at: the same one for every row.
    at = {} if field == "occurred_at" else {"occurred_at": OCCURRED}
    valid = fixture(type_name, **at, **{field: last_valid})
    ignored = field == "customer_id" and EVENT_TYPES[type_name] in GLOBAL_EVENT_TYPES  # checked, not kept
    for accepted in (through_json_line(valid), through_avro(valid)):
        assert not isinstance(accepted, str), accepted
        assert getattr(accepted, field) == (None if ignored else last_valid)
    invalid = fixture(type_name, **at, **{field: first_invalid})
    assert_rejected_naming(through_json_line(invalid), field)
    assert_rejected_naming(through_avro(invalid), field)


def test_a_deadline_must_also_lie_in_the_timestamp_range() -> None:
    late = iso("2099-06-01T00:00:00Z")
    assert not isinstance(
        through_avro(fixture("CommitmentMade", occurred_at=late, deliver_by=BEFORE_2100 - 1)), str
    )
    reason = through_avro(fixture("CommitmentMade", occurred_at=late, deliver_by=BEFORE_2100))
    assert reason == (
        "CommitmentMade: field 'deliver_by' must be from 2000-01-01T00:00:00Z and before "
        "2100-01-01T00:00:00Z, got 2100-01-01T00:00:00Z"
    )


def test_reasons_say_what_the_bound_is() -> None:
    def reason(decoded: dict[str, Any]) -> str:
        with pytest.raises(InvalidEvent) as caught:
            parse_event(decoded)
        return str(caught.value)

    deliver_by = OCCURRED + FIVE_YEARS + DAY
    assert reason(fixture("CommitmentMade", deliver_by=deliver_by)) == (
        "CommitmentMade: field 'deliver_by' must be at most 1826 days after occurred_at, got "
        + ms_to_iso(deliver_by)
    )
    assert reason(fixture("CommitmentMade", deliver_by=-(2**62))) == (
        "CommitmentMade: field 'deliver_by' must be from 2000-01-01T00:00:00Z and before "
        f"2100-01-01T00:00:00Z, got {-(2**62)} ms"
    )
    assert reason(fixture("CommitmentMade", product="p" * 200_000)) == (
        "CommitmentMade: field 'product' must be at most 256 characters, got 200000"
    )
    assert reason(fixture("OrderDelivered", features=["f"] * 20_000)) == (
        "OrderDelivered: field 'features' must have at most 100 items, got 20000"
    )
    assert reason(fixture("OrderPlaced", quantity="9" * 100_000)).endswith("(100000 characters)")
    assert reason(fixture("OrderPlaced", amount=math.nan)) == (
        "OrderPlaced: field 'amount' must be a finite number >= 0, got nan"
    )
    assert reason(fixture("OrderPlaced", quantity=True)).endswith("got True")  # a bool is no integer


def test_a_json_line_with_an_infinite_number_names_the_field() -> None:
    for number in ("1e999", "-1e999", "Infinity", "NaN"):
        line = json_line_of(fixture("OrderPlaced")).replace('"amount": 980.0', f'"amount": {number}')
        with pytest.raises(InvalidEvent) as caught:
            event_from_json_line(line)
        assert str(caught.value) == f"OrderPlaced: field 'amount' must be a finite number, got {number}"


def test_limits_are_configurable() -> None:
    strict = ValueLimits(max_quantity=100, max_id_length=12, deadline_within_days=1)
    big = fixture("CommitmentMade", quantity=101)
    assert not isinstance(through_avro(big), str)  # SPEC's defaults
    with pytest.raises(InvalidEvent, match="field 'quantity' must be an integer from 0 to 100, got 101"):
        parse_event(big, strict)
    with pytest.raises(InvalidEvent, match="field 'commitment_id' must be at most 12 characters, got 13"):
        event_from_json_line(json_line_of(fixture("CommitmentMade", commitment_id="c" * 13)), strict)
    with pytest.raises(InvalidEvent, match="field 'deliver_by' must be at most 1 days after occurred_at"):
        parse_event(fixture("CommitmentMade", deliver_by=OCCURRED + DAY + 1), strict)
    wide = ValueLimits(timestamps_from_ms=0)
    assert parse_event(fixture("OrderPlaced", occurred_at=0), wide).occurred_at == 0


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"max_quantity": 2**31}, "'max_quantity' must be an integer from 0 to 2147483647"),  # Avro's int
        ({"timestamps_from_ms": -1}, "'timestamps_from_ms' must be a moment from 1970-01-01T00:00:00Z"),
        ({"timestamps_from_ms": BEFORE_2100}, "'timestamps_from_ms' must come before 'timestamps_before_ms'"),
        ({"max_features": True}, "'max_features' must be an integer"),
    ],
)
def test_limits_that_would_split_the_paths_or_break_a_stage_are_refused(settings: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ValueLimits(**settings)


# -- Content fingerprint ---------------------------------------------------------------------------


def test_the_same_content_has_the_same_fingerprint_whatever_the_path() -> None:
    for line in fixture_lines():
        decoded = decoded_form(line)
        from_json = through_json_line(decoded)
        from_avro = through_avro(decoded)
        assert not isinstance(from_json, str) and not isinstance(from_avro, str)
        assert fingerprint(from_json) == fingerprint(from_avro) == fingerprint(parse_event(dict(decoded)))


def test_the_fingerprint_is_the_same_in_every_process() -> None:
    # Fingerprints are kept in state across restarts and releases: this number must never change.
    assert fingerprint(parse_event(dict(COMMITMENT))) == 14635486525884670191


def test_any_change_of_content_changes_the_fingerprint() -> None:
    for line in fixture_lines():
        decoded = decoded_form(line)
        seen = {fingerprint(parse_event(dict(decoded)))}
        for name, value in decoded.items():
            if name == "type" or (name == "customer_id" and EVENT_TYPES[line["type"]] in GLOBAL_EVENT_TYPES):
                continue  # a catalog event carries no customer: its customer_id is ignored
            if type(value) is bool:
                changed: Any = not value
            elif name == "score":
                changed = value % 5 + 1
            elif type(value) in (int, float):
                changed = value + 1
            elif type(value) is list:
                changed = [*value, "x"] if not value else value[:-1]
            elif value is None:
                continue
            elif name in {"claim", "category", "kind"}:
                changed = {"claim": "IN_STOCK", "category": "LATE", "kind": "REFUND"}[name]
                changed = (
                    changed
                    if changed != value
                    else {"claim": "SHIPS_WITHIN", "category": "OTHER", "kind": "CALLBACK"}[name]
                )
            else:
                changed = value + "x"
            print_ = fingerprint(parse_event({**decoded, name: changed}))
            assert print_ not in seen, (line["type"], name)
            seen.add(print_)
    same_fields = {"event_id": "e", "customer_id": "c", "occurred_at": T2026, "source": "s", "ticket_id": "t"}
    assert fingerprint(parse_event({"type": "CallbackMade", **same_fields})) != fingerprint(
        parse_event({"type": "TicketResolved", **same_fields})
    )
