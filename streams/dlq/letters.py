"""Dead letters as read back from ``alignment.dlq``: selecting, counting and showing them.

Everything here is pure: the records come from a ``DeadLetterLog`` (Kafka in ``streams.dlq.kafka``,
a list in tests). Whatever a dead letter carries was written by someone else (a customer's text, a
producer's garbage, Slack's answer), so nothing of it reaches a terminal unescaped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from streams import codec
from streams.contract import decoded_to_json_line, ms_to_iso
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC, DEAD_LETTER_TOPIC, INPUT_TOPICS

#: the reason given to a record of alignment.dlq that is not a DeadLetter itself
UNREADABLE = "unreadable_dead_letter"
PREVIEW_BYTES = 512
WORKER, NOTIFIER, SINK = "worker", "notifier", "sink"


class RawRecord(NamedTuple):
    """One record of alignment.dlq as Kafka hands it over."""

    partition: int
    offset: int
    value: bytes | None
    timestamp: int = 0  # the record's Kafka timestamp, epoch ms


class DeadLetterLog(Protocol):
    def records(self) -> Iterator[RawRecord]:
        """Every record of the dead-letter topic, from its beginning to the end it had when asked."""
        ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    dlq_partition: int
    dlq_offset: int
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    dead_lettered_at: int
    #: digest of the DeadLetter record's bytes: tells this dead letter from another one at the same
    #: position of a topic that was deleted and created again
    fingerprint: str
    #: where it is kept when not in alignment.dlq (a row of the sink's ClickHouse table)
    kept_at: str = ""
    #: the stage that set it aside, when the record does not say so by its source topic
    stage: str = ""

    @property
    def where(self) -> str:
        return self.kept_at or f"{DEAD_LETTER_TOPIC}:{self.dlq_partition}:{self.dlq_offset}"

    @property
    def origin(self) -> str:
        """The stage that refused it: the worker reads the input topics, the notifier the alerts."""
        if self.stage:
            return self.stage
        if self.topic == ALERTS_TOPIC:
            return NOTIFIER
        return WORKER if self.topic in INPUT_TOPICS else "unknown"

    @property
    def source(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def order(self) -> tuple[int, int, int]:
        """Oldest first. A customer's dead letters share a key, so a partition: within it, offsets."""
        return self.dead_lettered_at, self.dlq_partition, self.dlq_offset


def fingerprint(raw: bytes | None) -> str:
    return hashlib.sha256(raw or b"").hexdigest()[:32]


def parse(record: RawRecord) -> DeadLetter:
    """A record of alignment.dlq; one that does not decode is kept as an ``UNREADABLE`` dead letter
    (counted and shown, never redriven) rather than hidden."""
    try:
        body = codec.decode_dead_letter(record.value or b"")
        return DeadLetter(
            record.partition,
            record.offset,
            body["reason"],
            body["detail"],
            body["topic"],
            body["partition"],
            body["offset"],
            body["key"],
            body["value"],
            body["dead_lettered_at"],
            fingerprint(record.value),
        )
    except codec.DecodeError as error:
        return DeadLetter(
            record.partition,
            record.offset,
            UNREADABLE,
            str(error),
            "",
            -1,
            -1,
            None,
            record.value,
            record.timestamp,  # when it was written is all there is to go by
            fingerprint(record.value),
        )


def read_all(log: DeadLetterLog) -> Iterator[DeadLetter]:
    return (parse(record) for record in log.records())


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command works on; an empty criterion takes every value."""

    reasons: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    since_ms: int | None = None  # dead-lettered at or after
    until_ms: int | None = None  # ... and before

    def accept(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.topics and letter.topic not in self.topics:
            return False
        if self.since_ms is not None and letter.dead_lettered_at < self.since_ms:
            return False
        return self.until_ms is None or letter.dead_lettered_at < self.until_ms

    def of(self, letters: Iterable[DeadLetter]) -> list[DeadLetter]:
        """The accepted dead letters, oldest first."""
        return sorted((letter for letter in letters if self.accept(letter)), key=lambda d: d.order)


# -- markers of what was redriven ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Marker:
    """A dead letter redriven: kept in the compacted ``alignment.dlq-redriven``, keyed by ``dead_letter``."""

    dead_letter: str  # alignment.dlq:P:O
    fingerprint: str
    redriven_to: str  # topic:partition:offset of the record sent back
    redriven_at: int  # epoch ms

    def to_value(self) -> bytes:
        return json.dumps(
            {"fingerprint": self.fingerprint, "to": self.redriven_to, "at": self.redriven_at}
        ).encode()

    @classmethod
    def from_record(cls, key: bytes, value: bytes) -> Marker | None:
        try:
            body = json.loads(value)
            return cls(key.decode(), str(body["fingerprint"]), str(body["to"]), int(body["at"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None  # someone else's record: it marks nothing


def marker_of(letter: DeadLetter, markers: Mapping[str, Marker]) -> Marker | None:
    """The marker saying this very dead letter was redriven, if any."""
    marker = markers.get(letter.where)
    return marker if marker is not None and marker.fingerprint == letter.fingerprint else None


# -- counts ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class CountRow:
    origin: str
    reason: str
    topic: str
    dead_letters: int
    redriven: int
    first_at: int
    last_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "reason": self.reason,
            "topic": self.topic,
            "dead_letters": self.dead_letters,
            "redriven": self.redriven,
            "first_dead_lettered_at": safe_iso(self.first_at),
            "last_dead_lettered_at": safe_iso(self.last_at),
        }


def count(letters: Iterable[DeadLetter], markers: Mapping[str, Marker]) -> list[CountRow]:
    """Dead letters by the stage that refused them, reason and source topic, the largest group first."""
    rows: dict[tuple[str, str, str], CountRow] = {}
    for letter in letters:
        at = letter.dead_lettered_at
        group = (letter.origin, letter.reason, letter.topic)
        row = rows.get(group)
        if row is None:
            row = rows[group] = CountRow(*group, 0, 0, at, at)
        row.dead_letters += 1
        row.redriven += marker_of(letter, markers) is not None
        row.first_at, row.last_at = min(row.first_at, at), max(row.last_at, at)
    return sorted(rows.values(), key=lambda row: (-row.dead_letters, row.origin, row.reason, row.topic))


# -- one dead letter in full -----------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\x20-\x7e]")
# json.dumps escapes a newline inside a string: one left in its output is indentation
_UNSAFE_IN_JSON = re.compile(r"[^\x20-\x7e\n]")


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on escaped: C0 and C1 controls (colours,
    cursor moves, a title change), bidi overrides, line and paragraph separators."""
    return _UNSAFE.sub(lambda m: m[0] if m[0].isprintable() else m[0].encode("unicode_escape").decode(), text)


def safe_json(value: Any, *, indent: int | None = None) -> str:
    """JSON whose strings keep their letters but none of the characters ``printable`` escapes.

    Those only occur inside strings (JSON's own syntax is ASCII), so they are replaced by JSON's
    ``\\uXXXX`` escapes: the document still decodes to exactly ``value``."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _UNSAFE_IN_JSON.sub(lambda m: m[0] if m[0].isprintable() else json.dumps(m[0])[1:-1], text)


def safe_iso(ms: int) -> str:
    try:
        return ms_to_iso(ms)
    except (OverflowError, ValueError):  # a clock (or a record) out of datetime's range
        return f"{ms} ms since 1970-01-01T00:00:00Z"


def _text_or_none(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_value(letter: DeadLetter) -> tuple[str, Any, str | None]:
    """(format, decoded value or None, why not) for the original record's value.

    An input event comes back in its JSON-lines form (ISO timestamps, what `replay` reads), or with
    epoch-ms timestamps when one is past what ISO-8601 can show; an alert or alignment event as the
    topic carries it."""
    value = letter.value
    if value is None:
        return "null", None, None
    try:
        if letter.topic in INPUT_TOPICS:
            decoded = codec.decode(value)
            try:
                return "event", json.loads(decoded_to_json_line(decoded)), None
            except (OverflowError, ValueError):
                return "event", decoded, None
        if letter.topic == ALERTS_TOPIC:
            return "alert", codec.decode_alert(value), None
        if letter.topic == ALIGNMENT_TOPIC:
            return "alignment", codec.decode_alignment(value), None
    except codec.DecodeError as error:
        return "bytes", None, f"{error.reason}: {error.detail}"
    return "bytes", None, f"no decoder for records of {letter.topic or 'an unknown topic'}"


def _preview(data: bytes) -> str:
    head = data[:PREVIEW_BYTES].decode("utf-8", "backslashreplace")
    return printable(head) + ("…" if len(data) > PREVIEW_BYTES else "")


def describe(letter: DeadLetter, marker: Marker | None) -> dict[str, Any]:
    """Everything about one dead letter, JSON-ready; bytes as text when they are UTF-8, and in base64
    always, so the record can be rebuilt byte for byte."""
    value_format, decoded, error = decode_value(letter)
    key_text = _text_or_none(letter.key)
    description: dict[str, Any] = {
        "dead_letter": letter.where,
        "origin": letter.origin,
        "reason": letter.reason,
        "detail": letter.detail,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "dead_lettered_at": safe_iso(letter.dead_lettered_at),
        "key": key_text,
        "key_hex": None if letter.key is None else letter.key.hex(),
        "value_format": value_format,
        "value": decoded,
        "value_error": error,
        "value_size": len(letter.value or b""),
        "value_preview": None if decoded is not None or letter.value is None else _preview(letter.value),
        "value_base64": None if letter.value is None else base64.b64encode(letter.value).decode(),
        "redriven": None
        if marker is None
        else {"to": marker.redriven_to, "at": safe_iso(marker.redriven_at)},
    }
    return description


def readable(description: Mapping[str, Any]) -> str:
    """The human form of ``describe``: one labelled line per fact, then the value on lines of its own."""
    if description["key"] is not None:
        key = safe_json(description["key"])
    elif description["key_hex"] is not None:
        key = f"(not UTF-8) hex {description['key_hex']}"
    else:
        key = "(none)"
    redriven = description["redriven"]
    facts = [
        ("dead letter", description["dead_letter"]),
        ("set aside by", description["origin"]),
        ("reason", description["reason"]),
        ("detail", description["detail"]),
        ("source", f"{description['topic'] or '-'} partition {description['partition']} "
                   f"offset {description['offset']}"),
        ("dead-lettered", description["dead_lettered_at"]),
        ("redriven", "no" if redriven is None else f"to {redriven['to']} at {redriven['at']}"),
        ("key", key),
    ]  # fmt: skip
    size = description["value_size"]
    if description["value"] is not None:
        facts.append(("value", f"{description['value_format']}, {size} bytes"))
        body = safe_json(description["value"], indent=2)
    elif description["value_format"] == "null":
        facts.append(("value", "(none)"))
        body = None
    else:
        facts.append(("value", f"{size} bytes, not decoded ({description['value_error']})"))
        body = description["value_preview"]
    lines = [f"{label:<14}{printable(str(text))}" for label, text in facts]
    return "\n".join(lines if body is None else [*lines, body])
