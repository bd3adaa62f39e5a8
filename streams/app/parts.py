"""State values of any size as changelog records of a bounded size.

A Kafka record may have 1 MiB by default (the broker's ``message.max.bytes``, Faust's
``producer_max_request_size``); a batch with a larger record is refused, and refused again after
every restart. A customer's ledger has no such bound: thousands of open promises, each with up to 100
features, make it many MiB. So a value longer than ``PART_BYTES`` is stored as parts
``#<n>:<key>`` of at most ``PART_BYTES`` each, plus a small head under the key itself naming them by
count and by the digest of the whole value; a smaller value is stored as it is, under its key.

A crash among the records of one value leaves a head and parts that do not belong together. The
batch's journal (``journal.py``) holds these records too, so loading completes them; the digest makes
sure that a value is never assembled from parts of two versions, should anything else go wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

#: a quarter of Kafka's default record limit: room for the key and the record's framing
PART_BYTES = 256 * 1024
PART_PREFIX = b"#"

Change = tuple[bytes, bytes | None]  # (key, value or None for a delete)


class BrokenState(Exception):
    """A head whose parts are missing or are not the ones it names."""


def stored_records(partition: int, key: bytes, value: bytes | None, stored_parts: int) -> list[Change]:
    """The records that store ``value`` under ``key`` (None: delete it) over a version of it that
    had ``stored_parts`` parts: the parts, the head, then deletes of the parts no longer used."""
    if value is None or len(value) <= PART_BYTES:
        records: list[Change] = [(key, value)]
    else:
        records = [
            (part_key(key, number), value[at : at + PART_BYTES])
            for number, at in enumerate(range(0, len(value), PART_BYTES))
        ]
        head = {"p": partition, "parts": len(records), "digest": digest(value)}
        records.append((key, orjson.dumps(head)))
    parts = part_count(value)
    records.extend((part_key(key, number), None) for number in range(parts, stored_parts))
    return records


def part_count(value: bytes | None) -> int:
    """How many parts ``stored_records`` splits ``value`` into (0: none, it is stored whole)."""
    return 0 if value is None or len(value) <= PART_BYTES else -(-len(value) // PART_BYTES)


def is_head(record: dict[str, Any]) -> bool:
    return "parts" in record


def joined(key: bytes, head: dict[str, Any], stored: Callable[[bytes], bytes | None]) -> bytes:
    """The value a head names, from its parts as ``stored`` gives them."""
    pieces = [stored(part_key(key, number)) for number in range(head["parts"])]
    value = b"".join(piece for piece in pieces if piece is not None)
    if None in pieces or digest(value) != head["digest"]:
        raise BrokenState(f"state {key[:80]!r}: its {head['parts']} parts are not the ones its head names")
    return value


def part_key(key: bytes, number: int) -> bytes:
    return PART_PREFIX + str(number).encode() + b":" + key


def is_part_key(key: bytes) -> bool:
    return key.startswith(PART_PREFIX)


def digest(value: bytes) -> str:
    return hashlib.blake2b(value, digest_size=16).hexdigest()
