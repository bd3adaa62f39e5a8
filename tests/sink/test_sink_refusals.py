"""Against the stack's ClickHouse server (a scratch database each): a row it cannot take is set aside
with its reason and every other row lands once; a failed insert retried loses and doubles nothing."""

from __future__ import annotations

from typing import Any

from clickhouse_driver import errors
from kafka import TopicPartition

from streams import codec
from streams.settings import ALIGNMENT_TOPIC
from streams.sink.batch import TableSink, dead_letter_sink
from streams.sink.rows import ALIGNMENT_EVENTS
from streams.sink.runner import Batching, Route, SinkRunner
from streams.sink.schema import apply_schema
from tests.clickhouse_engines import ServerEngine
from tests.sink.sink_fakes import FakeClock, FakeConsumer, FakeRecord

START_MS = 1_772_000_000_000
TP0 = TopicPartition(ALIGNMENT_TOPIC, 0)


def _alignment(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "alignment_id": f"al-{n:03d}",
        "type": "PROMISE_OPENED",
        "customer_id": f"c-{n % 7}",
        "at": START_MS,
        "promise_id": f"p-{n}",
        "department": "SALES",
        "kind": "DELIVERY",
        **fields,
    }


def _runner(consumer: FakeConsumer, inserter: Any, clock: FakeClock) -> SinkRunner:
    sink = TableSink(inserter, ALIGNMENT_EVENTS, dead_letter_sink(inserter))
    return SinkRunner(
        consumer,
        {ALIGNMENT_TOPIC: Route(codec.decode_alignment, sink)},
        Batching(max_rows=1_000, max_wait_s=0.0),
        sleep=clock.sleep,
        monotonic=clock,
    )


def _stored(engine: ServerEngine) -> tuple[int, int]:
    return engine.execute("SELECT count(), uniqExact(alignment_id) FROM alignment_events FINAL")[0]


def test_a_row_with_a_negative_at_is_set_aside_and_the_good_rows_land_once(
    clickhouse_scratch: ServerEngine,
) -> None:
    apply_schema(clickhouse_scratch)
    # deliver_by = -1 gives an alignment event whose `at` is -1: no UInt64 holds it
    values = [codec.encode_alignment(_alignment(n, at=-1 if n == 7 else START_MS)) for n in range(40)]
    clock = FakeClock()
    for _ in range(2):  # and the same batch again, as after a crash before the commit
        records = [FakeRecord(ALIGNMENT_TOPIC, 0, offset, value) for offset, value in enumerate(values)]
        consumer = FakeConsumer(clock, {TP0}, records)
        _runner(consumer, clickhouse_scratch, clock).poll_once()
        assert [committed for _, _, committed in consumer.named("commit")] == [{TP0: 40}]

    assert _stored(clickhouse_scratch) == (39, 39)
    assert clickhouse_scratch.execute(
        "SELECT count() FROM alignment_events FINAL WHERE alignment_id = 'al-007'"
    ) == [(0,)]
    assert clickhouse_scratch.execute("SELECT sum(made) FROM scorecard_daily") == [(39,)]
    refused = clickhouse_scratch.execute(
        "SELECT source_topic, source_partition, source_offset, target_table, reason, error, "
        "lower(hex(unhex(value_hex))), toYear(refused_at) >= 2025 FROM sink_dead_letters FINAL"
    )
    assert refused == [
        (
            ALIGNMENT_TOPIC,
            0,
            7,
            "alignment_events",
            "unstorable_value",
            "at_ms: -1 is outside [0, 4294967295999]",
            values[7].hex(),
            1,
        )
    ]


def test_rows_the_driver_cannot_encode_are_found_by_halving_and_the_rest_inserted(
    clickhouse_scratch: ServerEngine,
) -> None:
    apply_schema(clickhouse_scratch)
    refused = dead_letter_sink(clickhouse_scratch)
    sink = TableSink(clickhouse_scratch, ALIGNMENT_EVENTS, refused)
    for n in range(50):
        # A lone surrogate (JSON can carry one) is a str, but has no UTF-8 form for the String column.
        name = "\ud800" if n in (11, 12, 49) else "Dana"
        sink.add(_alignment(n, rep_name=name), FakeRecord(ALIGNMENT_TOPIC, 2, 1_000 + n, b"v"))
    assert sink.flush() == 47
    assert refused.flush() == 3
    assert _stored(clickhouse_scratch) == (47, 47)
    rows = clickhouse_scratch.execute(
        "SELECT source_offset, reason, error FROM sink_dead_letters FINAL ORDER BY source_offset"
    )
    assert [(offset, reason) for offset, reason, _ in rows] == [
        (1_011, "clickhouse_refused"),
        (1_012, "clickhouse_refused"),
        (1_049, "clickhouse_refused"),
    ]
    assert all(error.startswith("UnicodeEncodeError") for _, _, error in rows)


class _FlakyClickHouse:
    """The first insert lands but its answer is lost; the second fails before sending; then all is well."""

    def __init__(self, engine: ServerEngine) -> None:
        self._engine = engine
        self.calls = 0

    def execute(self, query: str, params: Any = None, types_check: bool = False) -> Any:
        self.calls += 1
        if self.calls == 1:
            self._engine.execute(query, params)
            raise errors.NetworkError("Connection reset by peer")
        if self.calls == 2:
            raise errors.SocketTimeoutError("timed out")
        return self._engine.execute(query, params)


def test_a_transient_failure_then_success_loses_nothing_and_counts_nothing_twice(
    clickhouse_scratch: ServerEngine,
) -> None:
    apply_schema(clickhouse_scratch)
    clock = FakeClock()
    values = [codec.encode_alignment(_alignment(n)) for n in range(200)]
    consumer = FakeConsumer(
        clock, {TP0}, [FakeRecord(ALIGNMENT_TOPIC, 0, o, v) for o, v in enumerate(values)]
    )
    flaky = _FlakyClickHouse(clickhouse_scratch)

    _runner(consumer, flaky, clock).poll_once()

    assert flaky.calls == 3
    assert _stored(clickhouse_scratch) == (200, 200)
    assert clickhouse_scratch.execute("SELECT sum(made) FROM scorecard_daily") == [(200,)]
    assert clickhouse_scratch.execute("SELECT count() FROM sink_dead_letters") == [(0,)]
    assert [committed for _, _, committed in consumer.named("commit")] == [{TP0: 200}]
    assert consumer.named("pause") and consumer.paused() == set()
