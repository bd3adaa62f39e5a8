"""A batch's state changes, made atomic on a changelog that is only atomic per record.

A worker killed while it writes one batch's changed ledgers to the changelog leaves some of them new
and some old, with the input offsets (written last) still those of the batch before. The batch is then
applied again over ledgers that already hold it: a catalog fact (a stockout, say) re-applied to an order
that came after it in the log puts that order at risk, which the uninterrupted run never did.

So every batch's changes of a partition are first written as a journal: chunks of at most
``CHUNK_BYTES`` holding every (key, value) pair, then a header naming the chunks by digest, then the
changes themselves. The pairs are framed one after another and the chunks cut from that stream
wherever a chunk is full, so a change longer than a chunk spans several and no record of the journal
is larger than the broker accepts. When a partition is loaded, a journal whose header and chunks all
landed is laid over the store: either the crash came before the header (no change of the batch was
written: the store is the previous batch's, complete) or after it (the journal completes whatever
changes are missing). Digests rather than a sequence number keep the journal deterministic and need
no counter that survives a restart; a header next to chunks of a later, unfinished journal simply
does not match them. That is why the changes a journal completes are written again, all of them,
before the next journal starts: until then this journal is their only copy.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping

import orjson

from streams.app.parts import PART_BYTES, Change, digest

JOURNAL_PREFIX = b"j:"
#: the bound on every state record (parts.py)
CHUNK_BYTES = PART_BYTES

_LENGTH = struct.Struct(">I")
_DELETED = 0xFFFFFFFF


def journal_records(partition: int, changes: list[Change]) -> Iterator[Change]:
    """The records to write before ``changes``: the chunks, then the header that names them."""
    digests: list[str] = []
    for number, chunk in enumerate(_chunks(changes)):
        digests.append(digest(chunk))
        yield _chunk_key(partition, number), chunk
    yield _header_key(partition), orjson.dumps({"p": partition, "chunks": digests})


def completed_journal(store: Mapping[bytes, bytes], partition: int) -> list[Change]:
    """The changes of the partition's last journal if all of it landed, else nothing."""
    header = store.get(_header_key(partition))
    if header is None:
        return []
    chunks: list[bytes] = []
    for number, named in enumerate(orjson.loads(header)["chunks"]):
        chunk = store.get(_chunk_key(partition, number))
        if chunk is None or digest(chunk) != named:
            return []  # a later journal was being written over this one: the store holds this one whole
        chunks.append(chunk)
    return list(_unpack(b"".join(chunks)))


def is_journal_key(key: bytes) -> bool:
    return key.startswith(JOURNAL_PREFIX)


def _header_key(partition: int) -> bytes:
    return JOURNAL_PREFIX + str(partition).encode()


def _chunk_key(partition: int, number: int) -> bytes:
    return JOURNAL_PREFIX + f"{partition}:{number}".encode()


def _chunks(changes: list[Change]) -> Iterator[bytes]:
    framed: list[bytes] = []
    for key, value in changes:
        framed += (_LENGTH.pack(len(key)), key)
        framed += (_LENGTH.pack(_DELETED),) if value is None else (_LENGTH.pack(len(value)), value)
    stream = b"".join(framed)
    if len(stream) <= CHUNK_BYTES:
        yield stream  # most batches: no slice, no copy
        return
    for at in range(0, len(stream), CHUNK_BYTES):
        yield stream[at : at + CHUNK_BYTES]


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
