"""The journal that makes one batch's state changes atomic on a per-record changelog."""

from __future__ import annotations

from streams.app.journal import CHUNK_BYTES, completed_journal, journal_records


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
