"""Whatever a JSON-lines file holds, the reader returns an event or raises InvalidEvent, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.contract import InvalidEvent
from streams.contract.jsonl import decode_json_line, event_from_json_line
from tests.codec_helpers import fixture_lines

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
