"""The JSON-lines form of input events: ISO-8601 UTC timestamps instead of epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.contract.events import TIMESTAMP_FIELDS, InputEvent, InvalidEvent, event_to_decoded, parse_event

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)


def iso_to_ms(text: str) -> int:
    """``2026-03-01T10:00:00Z`` (milliseconds and any UTC offset accepted) -> epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(f"not an ISO-8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise InvalidEvent(f"timestamp without a time zone: {text!r} (add Z for UTC)")
    return (moment - _EPOCH) // _ONE_MS


def ms_to_iso(ms: int) -> str:
    """Epoch milliseconds -> ``2026-03-01T10:00:00Z`` (``.250`` added only when there are milliseconds)."""
    moment = _NAIVE_EPOCH + timedelta(milliseconds=ms)
    if ms % 1000:
        return moment.isoformat(timespec="milliseconds") + "Z"
    return moment.isoformat(timespec="seconds") + "Z"


def normalise_timestamps(decoded: dict[str, Any]) -> dict[str, Any]:
    """Turn ISO strings and ``datetime`` objects (fastavro's timestamp-millis) into epoch ms, in place."""
    for name in TIMESTAMP_FIELDS:
        value = decoded.get(name)
        if value is None or type(value) is int:
            continue
        if type(value) is str:
            decoded[name] = iso_to_ms(value)
        elif isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            decoded[name] = (value - _EPOCH) // _ONE_MS
    return decoded


def decode_json_line(line: str | bytes) -> dict[str, Any]:
    """One JSON line -> a decoded-event dict (timestamps in ms). Raises ``InvalidEvent``."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent(f"not JSON: {error.args[0] if error.args else error}") from None
    if type(obj) is not dict:
        raise InvalidEvent(f"expected a JSON object, got {type(obj).__name__}")
    return normalise_timestamps(obj)


def event_from_json_line(line: str | bytes) -> InputEvent:
    """One JSON line -> its typed input event. Raises ``InvalidEvent`` with a one-line reason."""
    return parse_event(decode_json_line(line))


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
