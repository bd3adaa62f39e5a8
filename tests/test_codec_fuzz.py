"""Whatever bytes arrive on an input topic, decode either returns an event dict or raises DecodeError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codec import AvroCodec, DecodeError
from tests.codec_helpers import SCHEMAS, decoded_form, fixture_lines

CODEC = AvroCodec(SCHEMAS)
KNOWN_IDS = sorted(CODEC.schema_id(name) for name in CODEC.schemas)
VALID = [CODEC.encode(decoded_form(line)) for line in fixture_lines()]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_decodes_or_rejects(value: bytes) -> None:
    try:
        event: dict[str, Any] = CODEC.decode(value)
    except DecodeError as error:
        assert error.reason in {"not_avro", "unknown_schema_id", "malformed_avro", "unknown_type"}
        assert "\n" not in str(error)
        return
    assert event["type"] in CODEC.input_types
    assert {"event_id", "customer_id", "occurred_at", "source"} <= event.keys()
    assert isinstance(event["occurred_at"], int)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes(value: bytes) -> None:
    assert_decodes_or_rejects(value)


@FUZZ
@given(st.sampled_from(KNOWN_IDS), st.binary(max_size=200))
def test_known_schema_id_with_arbitrary_body(schema_id: int, body: bytes) -> None:
    assert_decodes_or_rejects(b"\x00" + schema_id.to_bytes(4, "big") + body)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_damaged_valid_records(valid: bytes, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(valid) - 1))
    replacement = data.draw(st.binary(min_size=0, max_size=3))
    cut = data.draw(st.integers(position, len(valid)))
    assert_decodes_or_rejects(valid[:position] + replacement + valid[cut:])


@pytest.mark.parametrize(
    "huge_length", [b"\xfe\xff\xff\xff\x0f", b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"]
)
def test_huge_declared_lengths_are_rejected_without_allocating(huge_length: bytes) -> None:
    header = b"\x00" + CODEC.schema_id("promise_ledger.sales.CommitmentMade").to_bytes(4, "big")
    with pytest.raises(DecodeError):
        CODEC.decode(header + huge_length + b"x")
