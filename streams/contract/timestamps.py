"""Timestamps at the contract boundary: epoch milliseconds inside, ISO-8601 UTC in JSON lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


class InvalidEvent(ValueError):
    """A decoded event that breaks the contract; the message is one line naming the field."""


def iso_to_ms_or_none(text: str) -> int | None:
    """Like ``iso_to_ms``, but None instead of the error: one call on the JSON-lines hot path."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return _delta_ms(moment - _EPOCH)


def _delta_ms(delta: timedelta) -> int:
    """``delta // timedelta(milliseconds=1)``, exactly (days and seconds are whole milliseconds), at a
    fraction of the cost: the division goes through arbitrary-precision microseconds."""
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def iso_to_ms(text: str) -> int:
    """``2026-03-01T10:00:00Z`` (milliseconds and any UTC offset accepted) -> epoch milliseconds."""
    ms = iso_to_ms_or_none(text)
    if ms is not None:
        return ms
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(f"not an ISO-8601 timestamp: {text!r}") from None
    raise InvalidEvent(f"timestamp without a time zone: {text!r} (add Z for UTC)")


def ms_to_iso(ms: int) -> str:
    """Epoch milliseconds -> ``2026-03-01T10:00:00Z`` (``.250`` added only when there are milliseconds)."""
    moment = _NAIVE_EPOCH + timedelta(milliseconds=ms)
    if ms % 1000:
        return moment.isoformat(timespec="milliseconds") + "Z"
    return moment.isoformat(timespec="seconds") + "Z"


def to_epoch_ms(value: Any) -> Any:
    """An ISO string or a ``datetime`` (fastavro's timestamp-millis) -> epoch ms; anything else as is."""
    if type(value) is str:
        return iso_to_ms(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return _delta_ms(value - _EPOCH)
    return value
