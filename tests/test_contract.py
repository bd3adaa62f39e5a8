"""Validation of decoded events and the JSON-lines form (SPEC §3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.contract import (
    EVENT_TYPES,
    TOPIC_OF,
    CommitmentMade,
    InvalidEvent,
    StockChanged,
    decode_json_line,
    event_from_json_line,
    event_to_decoded,
    event_to_json_line,
    iso_to_ms,
    ms_to_iso,
    normalise_timestamps,
    parse_event,
)

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
