"""The JSON-lines form of input events: ISO-8601 UTC timestamps instead of epoch milliseconds."""

from __future__ import annotations

from typing import Any

import orjson

from streams.contract.events import (
    TIMESTAMP_FIELDS,
    InputEvent,
    event_to_decoded,
    parse_loose_event,
)
from streams.contract.timestamps import InvalidEvent, ms_to_iso, to_epoch_ms


def normalise_timestamps(decoded: dict[str, Any]) -> dict[str, Any]:
    """Turn ISO strings and ``datetime`` objects (fastavro's timestamp-millis) into epoch ms, in place."""
    for name in TIMESTAMP_FIELDS:
        value = decoded.get(name)
        if value is not None and type(value) is not int:
            decoded[name] = to_epoch_ms(value)
    return decoded


def load_json_line(line: str | bytes) -> dict[str, Any]:
    """One JSON line -> its object, timestamps still as written. Raises ``InvalidEvent``."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent(f"not JSON: {error.args[0] if error.args else error}") from None
    if type(obj) is not dict:
        raise InvalidEvent(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def decode_json_line(line: str | bytes) -> dict[str, Any]:
    """One JSON line -> a decoded-event dict (timestamps in ms). Raises ``InvalidEvent``."""
    return normalise_timestamps(load_json_line(line))


def event_from_json_line(line: str | bytes) -> InputEvent:
    """One JSON line -> its typed input event. Raises ``InvalidEvent`` with a one-line reason."""
    return parse_loose_event(load_json_line(line))


def decoded_to_json_line(decoded: dict[str, Any]) -> bytes:
    """A decoded-event dict -> one JSON line (no newline); absent optional fields are omitted."""
    out: dict[str, Any] = {}
    for name, value in decoded.items():
        if value is None:
            continue
        out[name] = ms_to_iso(value) if name in TIMESTAMP_FIELDS else value
    return orjson.dumps(out)


def event_to_json_line(event: InputEvent) -> bytes:
    """A typed input event -> one JSON line (no newline)."""
    return decoded_to_json_line(event_to_decoded(event))
