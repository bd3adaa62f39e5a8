"""Confluent-framed Avro: framing, round trips for every type, and every way decoding can fail."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from streams.codec import (
    AvroCodec,
    DecodeError,
    EncodeError,
    MalformedAvro,
    NotAvro,
    SchemaSetError,
    UnknownSchemaId,
    UnknownType,
)
from tests.codec_helpers import SCHEMAS, decoded_form, evolved_copy, fixture_lines, schema_json

IDS = json.loads((SCHEMAS / "ids.json").read_text(encoding="utf-8"))["schemas"]
ID_OF = {entry["name"]: int(key) for key, entry in IDS.items() if "/archive/" not in f"/{entry['file']}"}


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec(SCHEMAS)


def alignment_event(**overrides: Any) -> dict[str, Any]:
    event = {
        "alignment_id": "al-1",
        "type": "COMPLAINT_ATTRIBUTED",
        "customer_id": "cust-44",
        "at": 1772697600000,
        "promise_id": None,
        "department": None,
        "kind": None,
        "reason": None,
        "due_at": None,
        "ticket_id": "tk-1",
        "root_department": "MARKETING",
        "promise_ids": ["clm-2:ord-2", "sp-1"],
        "phrases": [],
        "claim_id": "clm-2",
        "campaign_id": "always-on",
        "product": "gadget",
        "rep_name": None,
        "agent_name": None,
        "deal_id": None,
        "order_id": "ord-2",
        "delay_s": None,
        "severity": None,
        "cause_event_id": "ev-0019",
    }
    return {**event, **overrides}


def alert(**overrides: Any) -> dict[str, Any]:
    value = {
        "alert_id": "al-9",
        "dedup_key": "cm-1",
        "group_key": "rep:Zoë",
        "severity": "HIGH",
        "type": "PROMISE_BROKEN",
        "customer_id": "cust-42",
        "promise_id": "cm-1",
        "department": "SALES",
        "kind": "DELIVERY",
        "reason": "SHORT",
        "at": 1772557200000,
        "due_at": 1772557200000,
        "claim_id": None,
        "product": "widget-pro",
        "rep_name": "Zoë",
        "customer_value": 980.0,
    }
    return {**value, **overrides}


def dead_letter(**overrides: Any) -> dict[str, Any]:
    value = {
        "reason": "not_avro",
        "detail": "first byte is 0x7b, not the Confluent magic byte 0x00",
        "topic": "sales.events",
        "partition": 3,
        "offset": 2**40,
        "key": b"cust-42",
        "value": b'{"oops": true}',
        "dead_lettered_at": 1772359200123,
    }
    return {**value, **overrides}


def test_fixture_covers_every_input_type(codec: AvroCodec) -> None:
    assert {line["type"] for line in fixture_lines()} == codec.input_types
    assert len(codec.input_types) == 17


@pytest.mark.parametrize("line", fixture_lines(), ids=lambda line: f"{line['type']}-{line['event_id']}")
def test_json_line_round_trips_through_avro(codec: AvroCodec, line: dict[str, Any]) -> None:
    event = decoded_form(line)
    decoded = codec.decode(codec.encode(event))
    assert decoded == event
    assert list(decoded) == list(event)  # "type" first, then the schema's field order
    assert type(decoded["occurred_at"]) is int  # epoch ms, not a datetime


def test_framing_is_magic_byte_schema_id_then_plain_avro(codec: AvroCodec) -> None:
    event = decoded_form(fixture_lines()[4])  # CommitmentMade with every optional field
    framed = codec.encode(event)
    assert framed[0] == 0
    assert int.from_bytes(framed[1:5], "big") == ID_OF["promise_ledger.sales.CommitmentMade"]
    # Any Avro implementation reading the body with the .avsc file gets the record back, without "type".
    schema = fastavro.parse_schema(schema_json("CommitmentMade"))
    body = fastavro.schemaless_reader(io.BytesIO(framed[5:]), schema)
    assert "type" not in body
    assert body["deliver_by"].timestamp() * 1000 == event["deliver_by"]
    assert body["features"] == ["SSO", "audit-log"]


def test_schema_ids_come_from_ids_file(codec: AvroCodec) -> None:
    for name in codec.schemas:
        assert codec.schema_id(name) == ID_OF[name]


def test_output_records_round_trip(codec: AvroCodec) -> None:
    for value in (alignment_event(), alignment_event(type="FULFILLED_LATE", delay_s=3600, promise_ids=[])):
        assert codec.decode_alignment(codec.encode_alignment(value)) == value
    assert codec.decode_alert(codec.encode_alert(alert())) == alert()
    assert codec.decode_dead_letter(codec.encode_dead_letter(dead_letter())) == dead_letter()
    no_bytes = dead_letter(key=None, value=None)
    assert codec.decode_dead_letter(codec.encode_dead_letter(no_bytes)) == no_bytes


def test_output_defaults_fill_in_when_absent(codec: AvroCodec) -> None:
    partial = {k: v for k, v in alert().items() if k not in ("customer_value", "claim_id")}
    assert codec.decode_alert(codec.encode_alert(partial)) == alert(customer_value=0.0, claim_id=None)


def test_output_schemas_have_exactly_the_brief_fields_in_order(codec: AvroCodec) -> None:
    def names(type_name: str) -> list[str]:
        return [f["name"] for f in codec.schemas[f"promise_ledger.alignment.{type_name}"].source["fields"]]

    assert names("AlignmentEvent") == list(alignment_event())
    assert names("Alert") == list(alert())
    assert names("DeadLetter") == list(dead_letter())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": 2**31}, "quantity"),
        ({"occurred_at": "2026-03-01T10:00:00Z"}, "occurred_at"),
        ({"customer_id": None}, "customer_id"),
        ({"features": "SSO"}, "features"),
        ({"colour": "red"}, r"unknown field\(s\) colour"),
        ({"type": "CommitmentMadeX"}, "not one of the input event types"),
    ],
)
def test_encode_rejects_a_dict_that_does_not_fit(
    codec: AvroCodec, change: dict[str, Any], message: str
) -> None:
    event = {**decoded_form(fixture_lines()[4]), **change}
    with pytest.raises(EncodeError, match=message):
        codec.encode(event)


def test_encode_rejects_missing_required_fields_and_unknown_enum_symbols(codec: AvroCodec) -> None:
    claim = decoded_form(fixture_lines()[0])
    with pytest.raises(EncodeError, match=r"missing required field.*claim_id"):
        codec.encode({k: v for k, v in claim.items() if k != "claim_id"})
    with pytest.raises(EncodeError, match="claim"):
        codec.encode({**claim, "claim": "SHIPS_SOON"})
    with pytest.raises(EncodeError, match="missing required field"):
        codec.encode_alignment({k: v for k, v in alignment_event().items() if k != "at"})


def test_customer_id_is_optional_only_for_events_not_tied_to_a_customer(codec: AvroCodec) -> None:
    for line in fixture_lines():
        event = {**decoded_form(line), "customer_id": None}
        if line["type"] in ("ClaimPublished", "ClaimWithdrawn", "StockChanged"):
            assert codec.decode(codec.encode(event))["customer_id"] is None
        else:
            with pytest.raises(EncodeError, match="customer_id"):
                codec.encode(event)


def test_absent_optional_fields_decode_as_none_and_arrays_as_empty(codec: AvroCodec) -> None:
    minimal = {
        "type": "OrderDelivered",
        "event_id": "e",
        "customer_id": "c",
        "occurred_at": 0,
        "source": "erp",
        "order_id": "o",
        "product": "p",
        "quantity": 1,
    }
    decoded = codec.decode(codec.encode(minimal))
    assert decoded["deal_id"] is None
    assert decoded["features"] == []


@pytest.mark.parametrize(
    ("value", "error", "detail"),
    [
        (b"", NotAvro, "shorter than"),
        (b"\x00\x00\x00", NotAvro, "shorter than"),
        (b'{"type": "OrderPlaced"}', NotAvro, "magic byte"),
        (b"\x00\x7f\xff\xff\xffanything", UnknownSchemaId, "2147483647"),
    ],
)
def test_decode_rejects_unframed_and_unknown(
    codec: AvroCodec, value: bytes, error: type, detail: str
) -> None:
    with pytest.raises(error, match=detail) as raised:
        codec.decode(value)
    assert raised.value.reason == {NotAvro: "not_avro", UnknownSchemaId: "unknown_schema_id"}[error]


def test_decode_rejects_none(codec: AvroCodec) -> None:
    with pytest.raises(NotAvro):
        codec.decode(None)  # type: ignore[arg-type]  # a Kafka tombstone


def test_decode_rejects_truncated_and_padded_bodies(codec: AvroCodec) -> None:
    framed = codec.encode(decoded_form(fixture_lines()[4]))
    for damaged in (framed[:-1], framed[:6], framed[:5], framed + b"\x00"):
        with pytest.raises(MalformedAvro) as raised:
            codec.decode(damaged)
        assert raised.value.reason == "malformed_avro"
        assert "\n" not in str(raised.value)


def test_decode_rejects_an_enum_symbol_the_schema_does_not_have(codec: AvroCodec) -> None:
    # A producer on a newer schema with an extra category writes index 6; this reader must not guess.
    newer = schema_json("TicketOpened")
    newer["fields"][5]["type"]["symbols"].append("BILLING")
    event = {**decoded_form(fixture_lines()[19]), "category": "BILLING"}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(newer), event)
    framed = b"\x00" + ID_OF["promise_ledger.service.TicketOpened"].to_bytes(4, "big") + body.getvalue()
    with pytest.raises(MalformedAvro, match="TicketOpened"):
        codec.decode(framed)


def test_decode_rejects_valid_records_of_the_wrong_kind(codec: AvroCodec) -> None:
    with pytest.raises(UnknownType, match="not an input event") as raised:
        codec.decode(codec.encode_alert(alert()))
    assert raised.value.reason == "unknown_type"
    with pytest.raises(UnknownType):
        codec.decode_alignment(codec.encode(decoded_form(fixture_lines()[2])))
    with pytest.raises(UnknownType):
        codec.decode_alert(codec.encode_alignment(alignment_event()))


def test_decode_errors_share_one_base_with_a_reason(codec: AvroCodec) -> None:
    for value in (b"x", b"\x00\x00\x00\x00\x63", b"\x00\x00\x00\x00\x01\xff"):
        with pytest.raises(DecodeError) as raised:
            codec.decode(value)
        assert raised.value.reason in {"not_avro", "unknown_schema_id", "malformed_avro"}


def test_records_written_with_an_old_schema_version_decode_into_the_current_one(
    codec: AvroCodec, tmp_path: Path
) -> None:
    old_event = decoded_form(fixture_lines()[4])
    old_framed = codec.encode(old_event)
    newer_codec = AvroCodec(evolved_copy(tmp_path))
    assert newer_codec.decode(old_framed) == {**old_event, "region": None}
    new_framed = newer_codec.encode({**old_event, "region": "EMEA"})
    assert new_framed[1:5] != old_framed[1:5]
    assert newer_codec.decode(new_framed)["region"] == "EMEA"


def test_a_schema_edited_without_a_new_id_is_refused_at_load(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    edited = schema_json("OrderPlaced")
    edited["fields"].append({"name": "coupon", "type": ["null", "string"], "default": None})
    (schemas / "fulfilment/OrderPlaced.avsc").write_text(json.dumps(edited))
    with pytest.raises(SchemaSetError, match="new id"):
        AvroCodec(schemas)


def test_a_schema_file_in_the_wrong_place_is_refused_at_load(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    shutil.move(schemas / "sales/CommitmentMade.avsc", schemas / "service/CommitmentMade.avsc")
    with pytest.raises(SchemaSetError, match=r"promise_ledger\.service\.CommitmentMade"):
        AvroCodec(schemas)
