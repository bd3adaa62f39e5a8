"""The sink's loop: a ClickHouse outage pauses the partitions and keeps polling (the group membership
survives it), a refused row is set aside, and nothing is committed before its rows are stored."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from clickhouse_driver import errors
from kafka import TopicPartition

from streams import codec
from streams.cli.sink import _apply_schema_when_reachable
from streams.retry import Backoff
from streams.settings import ALIGNMENT_TOPIC
from streams.sink.batch import TableSink, dead_letter_sink
from streams.sink.failures import Failure, classify
from streams.sink.rows import ALERTS, ALIGNMENT_EVENTS, DEAD_LETTERS, SINK_DEAD_LETTERS, RowRefused
from streams.sink.runner import Batching, Route, SinkRunner
from tests.sink.sink_fakes import FakeClickHouse, FakeClock, FakeConsumer, FakeRecord

START_MS = 1_772_000_000_000
TP0 = TopicPartition(ALIGNMENT_TOPIC, 0)
TP1 = TopicPartition(ALIGNMENT_TOPIC, 1)


def _alignment(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "alignment_id": f"al-{n}",
        "type": "PROMISE_OPENED",
        "customer_id": "c-1",
        "at": START_MS,
        **fields,
    }


def _records(numbers: range, partition: int = 0, **fields: Any) -> list[FakeRecord]:
    return [
        FakeRecord(ALIGNMENT_TOPIC, partition, n, codec.encode_alignment(_alignment(n, **fields)))
        for n in numbers
    ]


def _runner(consumer: FakeConsumer, clickhouse: FakeClickHouse, clock: FakeClock) -> SinkRunner:
    sink = TableSink(clickhouse, ALIGNMENT_EVENTS, dead_letter_sink(clickhouse))
    return SinkRunner(
        consumer,
        {ALIGNMENT_TOPIC: Route(codec.decode_alignment, sink)},
        Batching(max_rows=100, max_wait_s=0.0, retry_initial_s=0.5, retry_max_s=4.0),
        sleep=clock.sleep,
        monotonic=clock,
        uniform=lambda: 1.0,
    )


def _stored_ids(clickhouse: FakeClickHouse) -> list[str]:
    return sorted(row[0] for row in clickhouse.rows.get("alignment_events", []))


def test_an_outage_pauses_the_partitions_and_keeps_polling_until_an_insert_succeeds() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock, {TP0}, _records(range(10)))
    clickhouse = FakeClickHouse(failures=7, error=lambda: errors.NetworkError("connection refused"))
    max_poll_interval_s = 5.0

    _runner(consumer, clickhouse, clock).poll_once()

    first_failure_polls = [t for name, t, paused in consumer.calls if name == "poll" and paused]
    outage_s = first_failure_polls[-1] - first_failure_polls[0]
    assert outage_s > 3 * max_poll_interval_s  # longer than the poll interval, by far
    polls = [t for _, t, _ in consumer.named("poll")]
    assert max(b - a for a, b in itertools.pairwise(polls)) <= 1.0  # the member stays alive
    assert all(paused == {TP0} for _, _, paused in consumer.named("poll")[1:])  # nothing read meanwhile
    assert [partitions for _, _, partitions in consumer.named("resume")] == [{TP0}]
    names = [name for name, _, _ in consumer.calls if name != "poll"]
    assert names.index("commit") < names.index("resume")  # resumed once the rows are stored
    assert len(consumer.named("commit")) == 1
    assert clickhouse.attempts == 8
    assert _stored_ids(clickhouse) == sorted(f"al-{n}" for n in range(10))


def test_retries_back_off_with_jitter_up_to_the_cap() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock, {TP0}, _records(range(1)))
    clickhouse = FakeClickHouse(failures=6, error=lambda: errors.SocketTimeoutError("timed out"))
    draws = iter([0.0, 1.0, 0.5, 0.0, 1.0, 0.0])
    sink = TableSink(clickhouse, ALIGNMENT_EVENTS)
    runner = SinkRunner(
        consumer,
        {ALIGNMENT_TOPIC: Route(codec.decode_alignment, sink)},
        Batching(max_rows=100, max_wait_s=0.0, retry_initial_s=0.5, retry_max_s=4.0),
        sleep=clock.sleep,
        monotonic=clock,
        uniform=lambda: next(draws),
    )
    attempts_at: list[float] = []
    real_execute = clickhouse.execute

    def timed_execute(query: str, params: Any = None, types_check: bool = False) -> None:
        attempts_at.append(clock.now)
        real_execute(query, params)

    clickhouse.execute = timed_execute  # type: ignore[method-assign]
    runner.poll_once()
    waits = [round(b - a, 3) for a, b in itertools.pairwise(attempts_at)]
    # ceilings 0.5, 1, 2, 4, 4, 4; each wait in [ceiling / 2, ceiling]
    assert waits == [0.25, 1.0, 1.5, 2.0, 4.0, 2.0]


@pytest.mark.parametrize("failing_table", ["alignment_events", "sink_dead_letters"])
def test_records_a_rebalance_hands_over_during_an_outage_are_stored_before_the_commit(
    failing_table: str,
) -> None:
    clock = FakeClock()
    # one row set aside, so that both tables have rows to insert
    consumer = FakeConsumer(clock, {TP0}, [*_records(range(4)), *_records(range(4, 5), at=-1)])
    clickhouse = FakeClickHouse(
        failures=4, error=lambda: errors.NetworkError("connection reset"), failing_table=failing_table
    )

    def rebalance_once(fake: FakeConsumer) -> None:
        if clock.now > 1.0 and TP1 not in fake.assigned:
            fake.assigned.add(TP1)
            fake.queued.extend(_records(range(100, 103), partition=1))

    consumer.on_poll = rebalance_once
    _runner(consumer, clickhouse, clock).poll_once()

    expected = sorted(f"al-{n}" for n in [*range(4), *range(100, 103)])
    assert _stored_ids(clickhouse) == expected
    assert [row[2] for row in clickhouse.rows["sink_dead_letters"]] == [4]
    [(_, _, committed)] = consumer.named("commit")
    assert committed == {TP0: 5, TP1: 103}
    assert consumer.paused() == set()


def test_a_stop_during_an_outage_commits_nothing() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock, {TP0}, _records(range(3)))
    clickhouse = FakeClickHouse(failures=10**6, error=lambda: errors.NetworkError("down"))
    runner = _runner(consumer, clickhouse, clock)
    runner.poll_once(should_stop=lambda: clock.now > 20)
    assert consumer.named("commit") == []
    assert not runner.flush_and_commit(give_up=lambda: True)
    assert consumer.named("commit") == []


def test_a_refused_row_is_set_aside_and_the_rest_committed() -> None:
    clock = FakeClock()
    values = [codec.encode_alignment(_alignment(n, at=-1 if n == 3 else START_MS)) for n in range(8)]
    values[4] = b"\x00garbage"
    records = [FakeRecord(ALIGNMENT_TOPIC, 0, offset, value) for offset, value in enumerate(values)]
    consumer = FakeConsumer(clock, {TP0}, records)
    clickhouse = FakeClickHouse()

    _runner(consumer, clickhouse, clock).poll_once()

    assert _stored_ids(clickhouse) == [f"al-{n}" for n in (0, 1, 2, 5, 6, 7)]
    names = [column.name for column in SINK_DEAD_LETTERS.columns]
    refused = {row[2]: dict(zip(names, row, strict=True)) for row in clickhouse.rows["sink_dead_letters"]}
    assert set(refused) == {3, 4}
    assert refused[3]["reason"] == "unstorable_value"
    assert refused[3]["error"].startswith("at_ms: -1 is outside")
    assert refused[3]["value_hex"] == values[3].hex()
    assert refused[4]["reason"] == "undecodable"
    assert {r["target_table"] for r in refused.values()} == {"alignment_events"}
    assert [committed for _, _, committed in consumer.named("commit")] == [{TP0: 8}]


class _RefusesSurrogates(FakeClickHouse):
    """Refuses an insert holding a value with no UTF-8 form, as clickhouse-driver does when encoding."""

    def execute(self, query: str, params: Any = None, types_check: bool = False) -> None:
        for row in params:
            for value in row:
                if isinstance(value, str):
                    value.encode()
        super().execute(query, params)


def test_a_batch_refused_for_good_is_halved_until_only_the_refused_rows_are_left() -> None:
    clickhouse = _RefusesSurrogates()
    refused = dead_letter_sink(clickhouse)
    sink = TableSink(clickhouse, ALIGNMENT_EVENTS, refused)
    for n in range(64):
        name = "\ud800" if n in (5, 40) else "Dana"
        sink.add(_alignment(n, rep_name=name), FakeRecord(ALIGNMENT_TOPIC, 0, n, b"v%d" % n))
    assert sink.flush() == 62
    assert refused.flush() == 2
    assert len(_stored_ids(clickhouse)) == 62
    offsets = sorted(row[2] for row in clickhouse.rows["sink_dead_letters"])
    assert offsets == [5, 40]
    assert all(row[4] == "clickhouse_refused" for row in clickhouse.rows["sink_dead_letters"])
    assert "UnicodeEncodeError" in clickhouse.rows["sink_dead_letters"][0][5]
    assert clickhouse.attempts < 30  # halving, not a row at a time (64 + 2)


def test_a_transient_failure_in_the_middle_of_halving_keeps_the_rows_not_yet_inserted() -> None:
    clickhouse = _RefusesSurrogates()
    sink = TableSink(clickhouse, ALIGNMENT_EVENTS, dead_letter_sink(clickhouse))
    for n in range(16):
        sink.add(
            _alignment(n, rep_name="\ud800" if n == 3 else "Dana"), FakeRecord(ALIGNMENT_TOPIC, 0, n, b"")
        )
    real_execute = clickhouse.execute
    calls = 0

    def fails_third(query: str, params: Any = None, types_check: bool = False) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise errors.NetworkError("reset")
        real_execute(query, params)

    clickhouse.execute = fails_third  # type: ignore[method-assign]
    with pytest.raises(errors.NetworkError):
        sink.flush()
    assert len(sink) > 0
    sink.flush()
    assert len(sink) == 0
    assert _stored_ids(clickhouse) == sorted(f"al-{n}" for n in range(16) if n != 3)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (errors.TypeMismatchError("Column at_ms: argument out of range"), Failure.PERMANENT),
        (struct.error("argument out of range"), Failure.PERMANENT),
        (OverflowError("int too big"), Failure.PERMANENT),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), Failure.PERMANENT),
        (AttributeError("'int' object has no attribute 'encode'"), Failure.PERMANENT),
        (
            errors.ServerException("Cannot parse input", code=errors.ErrorCodes.CANNOT_PARSE_TEXT),
            Failure.PERMANENT,
        ),
        (errors.ServerException("too big", code=errors.ErrorCodes.TOO_LARGE_STRING_SIZE), Failure.PERMANENT),
        (errors.NetworkError("Connection refused"), Failure.TRANSIENT),
        (errors.SocketTimeoutError("timed out"), Failure.TRANSIENT),
        (EOFError("Unexpected EOF while reading bytes"), Failure.TRANSIENT),
        (ConnectionResetError(104, "reset"), Failure.TRANSIENT),
        (errors.ServerException("Too many parts", code=errors.ErrorCodes.TOO_MANY_PARTS), Failure.TRANSIENT),
        (
            errors.ServerException("Memory limit", code=errors.ErrorCodes.MEMORY_LIMIT_EXCEEDED),
            Failure.TRANSIENT,
        ),
        (errors.ServerException("read only", code=errors.ErrorCodes.TABLE_IS_READ_ONLY), Failure.TRANSIENT),
        (
            errors.ServerException("Not enough space", code=errors.ErrorCodes.NOT_ENOUGH_SPACE),
            Failure.TRANSIENT,
        ),
        (
            errors.ServerException("Table doesn't exist", code=errors.ErrorCodes.UNKNOWN_TABLE),
            Failure.TRANSIENT,
        ),
    ],
)
def test_errors_are_classified_permanent_only_when_they_are_about_the_data(
    error: Exception, kind: Failure
) -> None:
    assert classify(error) is kind


EXTREMES: list[Any] = [
    None,
    0,
    -1,
    2**31,
    2**32,
    2**63,
    2**64,
    -(2**63) - 1,
    10**400,
    True,
    0.5,
    float("nan"),
    float("inf"),
    "",
    "x" * 20_000,
    "\ud800",
    b"\xff",
    [],
    ["a"],
    [1],
    "abc",
    {"k": 1},
]


@pytest.mark.parametrize(
    "layout", [ALIGNMENT_EVENTS, ALERTS, DEAD_LETTERS, SINK_DEAD_LETTERS], ids=lambda layout: layout.table
)
def test_shaping_refuses_a_value_its_column_cannot_hold_and_never_raises_otherwise(layout: Any) -> None:
    for column in layout.columns:
        for value in EXTREMES:
            try:
                row = layout.row({column.source: value})
            except RowRefused as refusal:
                assert str(refusal).startswith(f"{column.name}:")
                continue
            stored = row[layout.columns.index(column)]
            if column.clickhouse_type.endswith("Int64") or column.clickhouse_type == "UInt32":
                assert type(stored) is int
            if column.maximum is not None:
                assert 0 <= stored < 2**32 * 1000  # the DateTime column derived from it holds it


def test_a_timestamp_past_datetime_range_is_refused_but_the_range_itself_is_stored() -> None:
    last_ms = (2**32 - 1) * 1000 + 999  # 2106-02-07T06:28:15.999Z
    assert ALIGNMENT_EVENTS.row(_alignment(1, at=last_ms))[3] == last_ms
    assert ALIGNMENT_EVENTS.row(_alignment(1, at=0))[3] == 0
    with pytest.raises(RowRefused, match=r"^at_ms: 4294967296000 is outside"):
        ALIGNMENT_EVENTS.row(_alignment(1, at=last_ms + 1))
    with pytest.raises(RowRefused, match=r"^due_at_ms: -1 is outside"):
        ALIGNMENT_EVENTS.row(_alignment(1, due_at=-1))


def test_backoff_grows_to_its_cap_and_every_delay_is_jittered() -> None:
    draws = iter([0.0, 1.0] * 5)
    backoff = Backoff(0.5, 3.0, uniform=lambda: next(draws))
    assert [backoff.next_delay() for _ in range(6)] == [0.25, 1.0, 1.0, 3.0, 1.5, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.25
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_the_schema_is_retried_with_jittered_backoff_until_clickhouse_answers() -> None:
    class NotYet:
        def __init__(self) -> None:
            self.failures = 4

        def execute(self, query: str, params: object = None) -> None:
            if self.failures:
                self.failures -= 1
                raise errors.NetworkError("Connection refused")

    slept: list[float] = []
    _apply_schema_when_reachable(NotYet(), lambda: False, sleep=slept.append)  # type: ignore[arg-type]
    assert len(slept) == 4
    for delay, ceiling in zip(slept, [0.5, 1.0, 2.0, 4.0], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert slept != [0.5, 1.0, 2.0, 4.0]  # drawn, not the bare doubling


class _AtMost100Months(FakeClickHouse):
    """Current ClickHouse: an insert block spanning more than 100 partitions is refused whole."""

    def execute(self, query: str, params: Any = None, types_check: bool = False) -> None:
        months = {row[3] // (31 * 86_400_000) for row in params}
        if len(months) > 100:
            self.attempts += 1
            raise errors.ServerException(
                "DB::Exception: Too many partitions for single INSERT block (more than 100). The limit is "
                "controlled by 'max_partitions_per_insert_block' setting.",
                code=errors.ErrorCodes.TOO_MANY_PARTS,
            )
        super().execute(query, params)


def test_a_batch_spanning_more_than_100_months_is_inserted_in_smaller_inserts() -> None:
    clickhouse = _AtMost100Months()
    sink = TableSink(clickhouse, ALIGNMENT_EVENTS, dead_letter_sink(clickhouse))
    month_ms = 31 * 86_400_000
    for n in range(1_000):  # events from 2000 to 2099, interleaved
        sink.add(_alignment(n, at=946_684_800_000 + (n * 37 % 1_200) * month_ms))
    assert sink.flush() == 1_000
    assert len(_stored_ids(clickhouse)) == 1_000
    assert "sink_dead_letters" not in clickhouse.rows
