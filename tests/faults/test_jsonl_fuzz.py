"""Whatever a JSON-lines file holds, the reader returns an event or raises InvalidEvent, nothing else;
and it accepts exactly the records the Avro path accepts."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.contract import InvalidEvent, fingerprint
from streams.contract.jsonl import decode_json_line, event_from_json_line
from tests.codec_helpers import decoded_form, fixture_lines, through_avro, through_json_line

pytestmark = pytest.mark.faults

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_LINES = fixture_lines()
FIELD_NAMES = sorted({name for line in VALID_LINES for name in line})
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["2026-03-01T10:00:00Z", "2026-02-30T10:00:00Z", "9999-12-31T23:59:59Z", "Z", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def assert_event_or_invalid(line: str | bytes) -> None:
    try:
        decode_json_line(line)
    except InvalidEvent as error:
        assert "\n" not in str(error)
    try:
        event = event_from_json_line(line)
    except InvalidEvent as error:
        assert "\n" not in str(error)
        return
    assert event.event_id and event.source
    assert isinstance(event.occurred_at, int)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(line: bytes) -> None:
    assert_event_or_invalid(line)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(line: str) -> None:
    assert_event_or_invalid(line)


@FUZZ
@given(JSON_VALUES)
def test_any_json_value(value: Any) -> None:
    assert_event_or_invalid(json.dumps(value))


@FUZZ
@given(
    st.sampled_from(VALID_LINES),
    st.dictionaries(st.sampled_from(FIELD_NAMES), JSON_VALUES, min_size=1, max_size=4),
    st.sets(st.sampled_from(FIELD_NAMES), max_size=3),
)
@example(  # found by this test: an enum field holding a list raised TypeError (unhashable)
    next(line for line in VALID_LINES if line["type"] == "TicketOpened"), {"category": []}, set()
)
def test_a_valid_line_with_fields_replaced_or_removed(
    line: dict[str, Any], replaced: dict[str, Any], removed: set[str]
) -> None:
    mutated = {**line, **replaced}
    for name in removed:
        mutated.pop(name, None)
    assert_event_or_invalid(json.dumps(mutated))


@FUZZ
@given(st.sampled_from(VALID_LINES), st.integers(min_value=0, max_value=400))
def test_a_truncated_valid_line(line: dict[str, Any], cut: int) -> None:
    text = json.dumps(line)
    assert_event_or_invalid(text[: min(cut, len(text) - 1)])


# -- One definition of valid values (SPEC §3): a record both paths accept or both reject ------------

DAY = 86_400_000
FROM_2000, BEFORE_2100 = 946_684_800_000, 4_102_444_800_000
FIVE_YEARS = 1826 * DAY
VALID_RECORDS = [decoded_form(line) for line in VALID_LINES]
ENUM_VALUES = ["IN_STOCK", "SHIPS_WITHIN", "LATE", "OTHER", "CALLBACK", "REFUND", "late", ""]
DEADLINES = {"deliver_by", "due_at", "valid_until"}


def _near(*bounds: int) -> st.SearchStrategy[int]:
    return st.sampled_from(bounds).flatmap(lambda bound: st.integers(bound - 2, bound + 2))


def _moments() -> st.SearchStrategy[int]:
    return (
        _near(FROM_2000, BEFORE_2100, 0)
        | st.integers(-(2**63), 2**63 - 1)
        | st.integers(FROM_2000, BEFORE_2100)
    )


def _strings(around: int) -> st.SearchStrategy[str]:
    return st.text(max_size=4) | st.integers(around - 2, around + 2).map(lambda n: "é" * n)


#: Values near every bound, of the right type and of others, per kind of field.
COUNTS = _near(0, 2**31 - 1, 1826 * 24, 1, 5) | st.integers(-(2**40), 2**40) | st.booleans()
NUMBERS = (
    st.floats()
    | st.sampled_from([0.0, -0.0, -5e-324, sys.float_info.max])
    | st.integers(-(2**40), 2**40)
    | st.booleans()
)
FEATURES = (
    st.lists(_strings(256), max_size=3)
    | st.integers(98, 102).map(lambda n: ["f"] * n)
    | st.lists(st.integers(0, 3) | st.none(), min_size=1, max_size=2)
)
ANY = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3)


def _value_for(name: str, value: Any, occurred_at: int) -> st.SearchStrategy[Any]:
    if name in DEADLINES:
        offsets = _near(FIVE_YEARS, -FIVE_YEARS, 0)
        return offsets.map(lambda offset: occurred_at + offset) | _moments() | ANY
    if name == "occurred_at":
        return _moments() | ANY
    if name in {"claim", "category", "kind"}:
        return st.sampled_from(ENUM_VALUES) | ANY
    if type(value) is bool:
        return st.booleans() | ANY
    if type(value) is int:
        return COUNTS | ANY
    if type(value) is float or name in {"amount", "unit_price"}:
        return NUMBERS | ANY
    if type(value) is list:
        return FEATURES | ANY
    return _strings(10_000 if name == "text" else 256) | ANY


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with some fields replaced by values near a bound, or of the wrong type."""
    record = dict(draw(st.sampled_from(VALID_RECORDS)))
    names = [name for name in record if name != "type"]
    occurred_at = record["occurred_at"]  # deadlines near its bounds, even if occurred_at changes too
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
        record[name] = draw(_value_for(name, record[name], occurred_at))
    return record


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_a_record_is_accepted_by_both_paths_or_by_neither(record: dict[str, Any]) -> None:
    from_json = through_json_line(record)
    from_avro = through_avro(record)
    if isinstance(from_avro, str) and from_avro.startswith("codec: "):
        # Avro cannot carry the value (an int past Avro's int, a bool for a number, ...): the JSON
        # line holding it must not be valid either.
        assert isinstance(from_json, str), (from_avro, from_json)
        return
    assert isinstance(from_json, str) == isinstance(from_avro, str), (from_json, from_avro)
    if isinstance(from_json, str):
        assert "\n" not in from_json and len(from_json) < 400
    else:
        assert from_json == from_avro and fingerprint(from_json) == fingerprint(from_avro)
