"""Against the stack's ClickHouse server (a scratch database): the rows the sink set aside read back
as dead letters, each once, with the value it was given."""

from __future__ import annotations

import pytest

from streams import codec
from streams.dlq.clickhouse import read_sink_letters
from streams.settings import ALIGNMENT_TOPIC
from streams.sink.batch import TableSink, dead_letter_sink
from streams.sink.rows import ALIGNMENT_EVENTS
from streams.sink.schema import apply_schema
from tests.clickhouse_engines import ServerEngine
from tests.sink.sink_fakes import FakeRecord

pytestmark = pytest.mark.stack

T0_S = 1_772_000_000.0
ALIGNMENT = {"alignment_id": "al-1", "type": "PROMISE_OPENED", "customer_id": "c-1", "at": -1,
             "promise_id": "p-1", "department": "SALES", "kind": "DELIVERY"}  # fmt: skip


def test_a_row_set_aside_twice_reads_once_with_its_latest_reason_and_its_value(
    clickhouse_scratch: ServerEngine,
) -> None:
    apply_schema(clickhouse_scratch)
    value = codec.encode_alignment(ALIGNMENT)
    now = [T0_S]
    refused = dead_letter_sink(clickhouse_scratch)
    sink = TableSink(clickhouse_scratch, ALIGNMENT_EVENTS, refused, clock=lambda: now[0])
    record = FakeRecord(ALIGNMENT_TOPIC, 3, 41, value)
    # A batch replayed after a crash sets the same record aside again, in another insert (a new part).
    for reason in ("unstorable_value", "clickhouse_refused"):
        sink.set_aside(record, reason, f"{reason}: at -1")
        assert refused.flush() == 1
        now[0] += 1
    sink.set_aside(FakeRecord(ALIGNMENT_TOPIC, 0, 7, b"\xff"), "undecodable", "DecodeError")
    assert refused.flush() == 1

    letters = sorted(read_sink_letters(clickhouse_scratch), key=lambda d: d.offset)
    assert [(d.partition, d.offset, d.reason, d.origin) for d in letters] == [
        (0, 7, "undecodable", "sink"),
        (3, 41, "clickhouse_refused", "sink"),
    ]
    assert letters[1].value == value and letters[1].detail == "clickhouse_refused: at -1"
    assert letters[1].dead_lettered_at == 1_772_000_001_000
    assert codec.decode_alignment(letters[1].value)["alignment_id"] == "al-1"
    later = read_sink_letters(clickhouse_scratch, since_ms=1_772_000_001_500)
    assert [d.offset for d in later] == [7]
