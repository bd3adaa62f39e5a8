"""A batch's state changes, made atomic on a changelog that is only atomic per record.

A worker killed while it writes one batch's changed ledgers to the changelog leaves some of them new
and some old, with the input offsets (written last) still those of the batch before. The batch is then
applied again over ledgers that already hold it: a catalog fact (a stockout, say) re-applied to an order
that came after it in the log puts that order at risk, which the uninterrupted run never did.

So every batch's changes of a partition are first written as a journal: chunks of at most
``CHUNK_BYTES`` holding every (key, value) pair, then a header naming the chunks by digest, then the
changes themselves. When a partition is loaded, a journal whose header and chunks all landed is laid
over the store: either the crash came before the header (no change of the batch was written: the store
is the previous batch's, complete) or after it (the journal completes whatever changes are missing).
Digests rather than a sequence number keep the journal deterministic and need no counter that survives
a restart; a header next to chunks of a later, unfinished journal simply does not match them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping

import orjson

JOURNAL_PREFIX = b"j:"
#: well under the 1 MB a Kafka record may have by default (Faust's producer_max_request_size)
CHUNK_BYTES = 512 * 1024

_LENGTH = struct.Struct(">I")
_DELETED = 0xFFFFFFFF

Change = tuple[bytes, bytes | None]  # (key, value or None for a delete)


def journal_records(partition: int, changes: list[Change]) -> Iterator[Change]:
    """The records to write before ``changes``: the chunks, then the header that names them."""
    digests: list[str] = []
    for number, chunk in enumerate(_chunks(changes)):
        digests.append(_digest(chunk))
        yield _chunk_key(partition, number), chunk
    yield _header_key(partition), orjson.dumps({"p": partition, "chunks": digests})


def completed_journal(store: Mapping[bytes, bytes], partition: int) -> list[Change]:
    """The changes of the partition's last journal if all of it landed, else nothing."""
    header = store.get(_header_key(partition))
    if header is None:
        return []
    chunks: list[bytes] = []
    for number, digest in enumerate(orjson.loads(header)["chunks"]):
        chunk = store.get(_chunk_key(partition, number))
        if chunk is None or _digest(chunk) != digest:
            return []  # a later journal was being written over this one: the store holds this one whole
        chunks.append(chunk)
    return [change for chunk in chunks for change in _unpack(chunk)]


def is_journal_key(key: bytes) -> bool:
    return key.startswith(JOURNAL_PREFIX)


def _header_key(partition: int) -> bytes:
    return JOURNAL_PREFIX + str(partition).encode()


def _chunk_key(partition: int, number: int) -> bytes:
    return JOURNAL_PREFIX + f"{partition}:{number}".encode()


def _digest(chunk: bytes) -> str:
    return hashlib.blake2b(chunk, digest_size=16).hexdigest()


def _chunks(changes: list[Change]) -> Iterator[bytes]:
    parts: list[bytes] = []
    size = 0
    for key, value in changes:
        framed = _LENGTH.pack(len(key)) + key
        framed += _LENGTH.pack(_DELETED) if value is None else _LENGTH.pack(len(value)) + value
        if parts and size + len(framed) > CHUNK_BYTES:
            yield b"".join(parts)
            parts, size = [], 0
        parts.append(framed)
        size += len(framed)
    if parts:
        yield b"".join(parts)


def _unpack(chunk: bytes) -> Iterator[Change]:
    view = memoryview(chunk)
    at = 0
    while at < len(view):
        (key_length,) = _LENGTH.unpack_from(view, at)
        key = bytes(view[at + 4 : at + 4 + key_length])
        at += 4 + key_length
        (value_length,) = _LENGTH.unpack_from(view, at)
        at += 4
        if value_length == _DELETED:
            yield key, None
            continue
        yield key, bytes(view[at : at + value_length])
        at += value_length
