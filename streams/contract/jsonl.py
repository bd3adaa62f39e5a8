"""The JSON-lines form of input events: ISO-8601 UTC timestamps instead of epoch milliseconds."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from streams.contract.events import (
    DEFAULT_LIMITS,
    TIMESTAMP_FIELDS,
    InputEvent,
    ValueLimits,
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
        _raise_for_non_finite_number(line)
        raise InvalidEvent(f"not JSON: {error.args[0] if error.args else error}") from None
    if type(obj) is not dict:
        raise InvalidEvent(f"expected a JSON object, got {type(obj).__name__}")
    return obj


class _NonFinite(str):
    """A number the lenient parser read that no double holds finitely (``1e999``, ``NaN``, ...)."""


def _number(text: str) -> Any:
    value = float(text)  # a float, whatever the token: the digits of a huge int give inf, no error
    if not math.isfinite(value):
        return _NonFinite(text)
    return value if any(char in text for char in ".eE") else int(text)


def _no_non_finite(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, value in pairs:
        if type(value) is _NonFinite or (type(value) is list and any(type(v) is _NonFinite for v in value)):
            type_name = dict(pairs).get("type")
            prefix = f"{_short(type_name)}: " if type(type_name) is str else ""
            raise InvalidEvent(f"{prefix}field '{_short(key)}' must be a finite number, got {_short(value)}")
    return dict(pairs)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 64 else text[:64] + "…"


def _raise_for_non_finite_number(line: str | bytes) -> None:
    """Name the field when orjson refused a line for a number like 1e999, NaN or Infinity (which an
    Avro double would carry, and the contract rejects by name). The lenient stdlib parser is only
    asked where such a number is: it never makes a line valid that orjson refused."""
    try:
        json.loads(
            line,
            parse_float=_number,
            parse_int=_number,
            parse_constant=_NonFinite,
            object_pairs_hook=_no_non_finite,
        )
    except InvalidEvent:
        raise
    except (ValueError, TypeError, RecursionError):  # no such number: orjson's reason stands
        return


def decode_json_line(line: str | bytes) -> dict[str, Any]:
    """One JSON line -> a decoded-event dict (timestamps in ms). Raises ``InvalidEvent``."""
    return normalise_timestamps(load_json_line(line))


def event_from_json_line(line: str | bytes, limits: ValueLimits = DEFAULT_LIMITS) -> InputEvent:
    """One JSON line -> its typed input event. Raises ``InvalidEvent`` with a one-line reason."""
    return parse_loose_event(load_json_line(line), limits)


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
