"""The journal that makes one batch's state changes atomic on a per-record changelog, and the parts
that keep every one of its records under the broker's limit."""

from __future__ import annotations

import orjson
import pytest

from streams.app.journal import CHUNK_BYTES, completed_journal, journal_records
from streams.app.parts import PART_BYTES, BrokenState, is_head, joined, part_key, stored_records


def _changes(count: int, size: int, tag: bytes) -> list[tuple[bytes, bytes | None]]:
    return [(b"c:cust-%d" % n, tag * size) for n in range(count)] + [(b"c:gone", None)]


def _written(records: list[tuple[bytes, bytes | None]], store: dict[bytes, bytes]) -> dict[bytes, bytes]:
    for key, value in records:
        assert value is not None
        store[key] = value
    return store


def test_a_journal_that_landed_gives_back_every_change_with_deletes() -> None:
    changes = _changes(count=40, size=40_000, tag=b"a")  # ~1.6 MB: several chunks
    records = list(journal_records(3, changes))
    assert len(records) >= 4  # chunks, then the header
    assert all(len(value or b"") <= CHUNK_BYTES + 64 for _, value in records)
    assert completed_journal(_written(records, {}), 3) == changes
    assert completed_journal(_written(records, {}), 4) == []  # another partition's journal


def test_a_journal_cut_short_before_its_header_is_not_used() -> None:
    first = list(journal_records(0, _changes(count=40, size=40_000, tag=b"a")))
    store = _written(first, {})
    second = list(journal_records(0, _changes(count=40, size=40_000, tag=b"b")))
    _written(second[:2], store)  # killed while writing the second journal's chunks
    assert completed_journal(store, 0) == []  # the first one's changes all landed before the second began
    _written(second[2:], store)
    assert completed_journal(store, 0) == _changes(count=40, size=40_000, tag=b"b")


def test_no_header_no_journal() -> None:
    records = list(journal_records(1, _changes(count=2, size=10, tag=b"x")))
    assert completed_journal(_written(records[:-1], {}), 1) == []


def test_a_change_longer_than_a_chunk_spans_chunks_none_of_them_longer() -> None:
    changes = [(b"c:small", b"s" * 100), (b"c:huge", bytes(range(256)) * 12_000), (b"c:gone", None)]
    records = list(journal_records(0, changes))  # the huge value is 3 MB: a dozen chunks
    assert len(records) >= 13
    assert max(len(value or b"") for _, value in records) <= CHUNK_BYTES
    assert completed_journal(_written(records, {}), 0) == changes


def _stored(records: list[tuple[bytes, bytes | None]], store: dict[bytes, bytes]) -> dict[bytes, bytes]:
    for key, value in records:
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value
    return store


def _value(store: dict[bytes, bytes], key: bytes) -> bytes:
    record = store[key]
    head = orjson.loads(record)
    return joined(key, head, store.get) if is_head(head) else record


def test_a_value_over_the_part_size_is_stored_in_parts_and_a_smaller_one_deletes_the_rest() -> None:
    big = orjson.dumps({"p": 2, "ledger": ["x" * 100] * 20_000})  # 2 MB: 8 parts
    records = stored_records(2, b"c:k", big, stored_parts=0)
    assert all(len(value or b"") <= PART_BYTES for _, value in records)
    store = _stored(records, {})
    assert _value(store, b"c:k") == big and len(store) == 9

    smaller = big[: PART_BYTES * 2 + 1]  # 3 parts: the other 5 are deleted
    store = _stored(stored_records(2, b"c:k", smaller, stored_parts=8), store)
    assert _value(store, b"c:k") == smaller and len(store) == 4
    assert _stored(stored_records(2, b"c:k", None, stored_parts=3), store) == {}
    assert stored_records(2, b"c:k", b"{}", stored_parts=0) == [(b"c:k", b"{}")]


def test_a_head_with_a_part_of_another_version_is_refused() -> None:
    old, new = b"a" * (3 * PART_BYTES), b"b" * (3 * PART_BYTES)
    store = _stored(stored_records(0, b"c:k", old, 0), {})
    store = _stored(stored_records(0, b"c:k", new, 3)[1:], store)  # part 0 of the new one never landed
    with pytest.raises(BrokenState):
        joined(b"c:k", orjson.loads(store[b"c:k"]), store.get)
    del store[part_key(b"c:k", 2)]
    with pytest.raises(BrokenState):
        joined(b"c:k", orjson.loads(store[b"c:k"]), store.get)
