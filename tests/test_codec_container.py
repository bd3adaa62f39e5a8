"""Avro container files of input events, as `promise-ledger replay` reads them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest

from streams.codec import AvroCodec, EncodeError, MalformedAvro, UnknownType, read_container, write_container
from tests.codec_helpers import SCHEMAS, decoded_form, evolved_copy, fixture_lines, schema_json

CODEC = AvroCodec(SCHEMAS)
EVENTS = [decoded_form(line) for line in fixture_lines()]


def test_mixed_log_round_trips_in_order() -> None:
    file = io.BytesIO()
    assert write_container(file, EVENTS, CODEC) == len(EVENTS)
    file.seek(0)
    assert list(read_container(file, CODEC)) == EVENTS


def test_events_with_identical_fields_keep_their_type() -> None:
    # CallbackMade and TicketResolved have the same fields; the union must not pick the first match.
    pair = [event for event in EVENTS if event["type"] in ("TicketResolved", "CallbackMade")]
    file = io.BytesIO()
    write_container(file, pair, CODEC)
    file.seek(0)
    assert [event["type"] for event in read_container(file, CODEC)] == [event["type"] for event in pair]


def test_file_of_a_single_event_type_written_elsewhere_is_readable() -> None:
    orders = [event for event in EVENTS if event["type"] == "OrderPlaced"]
    file = io.BytesIO()
    plain_records = [{k: v for k, v in event.items() if k != "type"} for event in orders]
    fastavro.writer(file, fastavro.parse_schema(schema_json("OrderPlaced")), plain_records)
    file.seek(0)
    assert list(read_container(file, CODEC)) == orders


def test_a_file_written_with_older_schemas_reads_as_the_current_ones(tmp_path: Path) -> None:
    file = io.BytesIO()
    write_container(file, EVENTS, CODEC)
    file.seek(0)
    newer = AvroCodec(evolved_copy(tmp_path))
    expected = [{**event, "region": None} if event["type"] == "CommitmentMade" else event for event in EVENTS]
    assert list(read_container(file, newer)) == expected


def test_a_bad_event_is_named_by_position() -> None:
    broken = [*EVENTS[:2], {**EVENTS[2], "claim_id": None}]
    with pytest.raises(EncodeError, match="event 3: CustomerExposed"):
        write_container(io.BytesIO(), broken, CODEC)


def test_a_file_of_outputs_is_not_an_input_log() -> None:
    file = io.BytesIO()
    dead_letter = json.loads((SCHEMAS / "alignment" / "DeadLetter.avsc").read_text())
    fastavro.writer(
        file,
        fastavro.parse_schema(dead_letter),
        [{"reason": "r", "detail": "d", "topic": "t", "partition": 0, "offset": 0, "dead_lettered_at": 0}],
    )
    file.seek(0)
    with pytest.raises(UnknownType, match="DeadLetter"):
        list(read_container(file, CODEC))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_files_raise_malformed_avro(damage: str) -> None:
    file = io.BytesIO()
    write_container(file, EVENTS, CODEC)
    data = file.getvalue()
    damaged = b"not an avro file at all" if damage == "garbage" else data[: len(data) - 40]
    with pytest.raises(MalformedAvro):
        list(read_container(io.BytesIO(damaged), CODEC))
