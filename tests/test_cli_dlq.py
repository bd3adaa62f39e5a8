"""`promise-ledger dlq` without a broker: the dead-letter topic, the source topics and the redriven
markers are fakes behind the interfaces the Kafka implementation fills (streams/dlq/kafka.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams import codec
from streams.cli import dlq as dlq_cli
from streams.cli.main import main
from streams.dlq import REDRIVEN_FROM_HEADER, Marker, Outgoing, RawRecord
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC
from tests.codec_helpers import decoded_form, fixture_lines

T0 = 1_772_000_000_000  # 2026-02-25T06:13:20Z
MINUTE_MS = 60_000
COMMITMENT = decoded_form(next(line for line in fixture_lines() if line["type"] == "CommitmentMade"))


def _commitment(n: int, **changes: Any) -> dict[str, Any]:
    return {**COMMITMENT, "event_id": f"ev-{n}", "customer_id": f"cust-{n}", **changes}


def _dead_letter(
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    key: bytes | None = b"cust",
    at: int = T0,
    detail: str = "refused",
) -> bytes:
    return codec.encode_dead_letter(
        {
            "reason": reason,
            "detail": detail,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key,
            "value": value,
            "dead_lettered_at": at,
        }
    )


@dataclass
class FakeKafka:
    """alignment.dlq, the source topics' partitions, what was sent to them and the markers."""

    dlq: list[RawRecord] = field(default_factory=list)
    partitions: dict[str, set[int]] = field(
        default_factory=lambda: {t: set(range(6)) for t in ("sales.events", "service.events", ALERTS_TOPIC)}
    )
    sent: list[Outgoing] = field(default_factory=list)
    marked: list[Marker] = field(default_factory=list)
    fail_on_send: int | None = None  # the number of send() calls that succeed before one raises
    sends: int = 0

    def add(self, value: bytes, partition: int = 0) -> RawRecord:
        offset = sum(1 for r in self.dlq if r.partition == partition)
        record = RawRecord(partition, offset, value)
        self.dlq.append(record)
        return record

    # DlqAccess
    def log(self) -> FakeKafka:
        return self

    def records(self) -> Iterator[RawRecord]:
        return iter(list(self.dlq))

    def markers(self) -> dict[str, Marker]:
        return {marker.dead_letter: marker for marker in self.marked}

    def target(self) -> FakeKafka:
        return self

    def close(self) -> None:
        pass

    # RedriveTarget
    def partitions_for(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)

    def send(self, records: Sequence[Outgoing]) -> list[str]:
        if self.fail_on_send is not None and self.sends >= self.fail_on_send:
            from kafka.errors import KafkaTimeoutError

            raise KafkaTimeoutError("no answer")
        self.sends += 1
        positions = []
        for record in records:
            self.sent.append(record)
            positions.append(f"{record.topic}:{record.partition}:{len(self.sent) - 1}")
        return positions

    def mark(self, markers: Sequence[Marker]) -> None:
        self.marked.extend(markers)


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> FakeKafka:
    fake = FakeKafka()
    monkeypatch.setattr(dlq_cli, "open_dlq", lambda settings: fake)
    monkeypatch.setattr(dlq_cli, "read_sink", lambda settings, selection: [])
    return fake


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["dlq", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _mixed(kafka: FakeKafka) -> None:
    """3 far-future commitments from sales.events, 2 refused alerts, 1 not-Avro service record."""
    for n in range(3):
        event = _commitment(n)
        kafka.add(
            _dead_letter("timestamp_in_future", "sales.events", n, 10 + n, codec.encode(event), at=T0 + n)
        )
    for n in range(2):
        alert = {"alert_id": f"al-{n}", "dedup_key": f"k-{n}", "group_key": "g", "severity": "HIGH",
                 "type": "PROMISE_BROKEN", "customer_id": "c", "promise_id": "p", "department": "SALES",
                 "kind": "DELIVERY", "reason": "SHORT", "at": T0, "due_at": T0, "claim_id": None,
                 "product": "lamp", "rep_name": "Zoë", "customer_value": 1.0}  # fmt: skip
        kafka.add(_dead_letter("slack_refused", ALERTS_TOPIC, 1, n, codec.encode_alert(alert), at=T0 + 10), 1)
    kafka.add(_dead_letter("not_avro", "service.events", 2, 7, b"{json?}", at=T0 + 20), 2)


# -- counts ----------------------------------------------------------------------------------------


def test_counts_are_by_reason_and_source_topic_largest_first(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    code, out, _ = _run(capsys, "counts", "--json")
    assert code == 0
    rows = _json_lines(out)
    assert [(r["reason"], r["topic"], r["dead_letters"], r["redriven"]) for r in rows] == [
        ("timestamp_in_future", "sales.events", 3, 0),
        ("slack_refused", ALERTS_TOPIC, 2, 0),
        ("not_avro", "service.events", 1, 0),
    ]
    assert rows[0]["first_dead_lettered_at"] == "2026-02-25T06:13:20Z"
    assert rows[0]["last_dead_lettered_at"] == "2026-02-25T06:13:20.002Z"


def test_counts_on_an_empty_topic_say_so(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "counts")
    assert code == 0
    assert "no dead letters" in out
    assert _run(capsys, "counts", "--json")[:2] == (0, "")


def test_a_record_of_the_topic_that_is_no_dead_letter_is_counted_not_hidden(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka.dlq.append(RawRecord(0, 0, b"garbage", T0))
    rows = _json_lines(_run(capsys, "counts", "--json")[1])
    assert [(r["reason"], r["dead_letters"]) for r in rows] == [("unreadable_dead_letter", 1)]
    assert rows[0]["first_dead_lettered_at"] == "2026-02-25T06:13:20Z"  # its Kafka timestamp


def test_counts_tell_how_many_were_redriven(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    _mixed(kafka)
    assert _run(capsys, "redrive", "--reason", "slack_refused", "--yes")[0] == 0
    rows = {r["reason"]: r for r in _json_lines(_run(capsys, "counts", "--json")[1])}
    assert rows["slack_refused"]["redriven"] == 2
    assert rows["timestamp_in_future"]["redriven"] == 0


def test_the_counts_table_escapes_what_a_record_could_make_the_terminal_do(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    kafka.add(_dead_letter("bad\x1b]0;pwned\x07[bold]", "sales.events", 0, 0, b"x"))
    code, out, _ = _run(capsys, "counts")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b" in out and "[bold]" in out  # shown, not interpreted as rich markup


# -- show ------------------------------------------------------------------------------------------


def test_show_gives_an_input_event_in_its_json_lines_form(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    code, out, _ = _run(capsys, "show", "--reason", "timestamp_in_future", "--index", "1", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["dead_letter"] == "alignment.dlq:0:1"
    assert (shown["reason"], shown["topic"], shown["partition"], shown["offset"]) == (
        "timestamp_in_future",
        "sales.events",
        1,
        11,
    )
    assert shown["dead_lettered_at"] == "2026-02-25T06:13:20.001Z"
    assert shown["key"] == "cust"
    assert shown["value_format"] == "event"
    assert shown["value"]["event_id"] == "ev-1"
    assert shown["value"]["type"] == "CommitmentMade"
    assert shown["value"]["occurred_at"].endswith("Z")  # ISO-8601, as replay reads it
    assert base64.b64decode(shown["value_base64"]) == codec.encode(_commitment(1))
    assert shown["redriven"] is None


def test_show_decodes_an_alert_as_an_alert(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    _mixed(kafka)
    shown = json.loads(_run(capsys, "show", "--topic", ALERTS_TOPIC, "--json")[1])
    assert shown["value_format"] == "alert"
    assert shown["value"]["alert_id"] == "al-0"


def test_show_previews_bytes_that_do_not_decode(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    _mixed(kafka)
    shown = json.loads(_run(capsys, "show", "--offset", "2:0", "--json")[1])
    assert (shown["reason"], shown["value_format"], shown["value"]) == ("not_avro", "bytes", None)
    assert shown["value_error"].startswith("not_avro")
    assert shown["value_preview"] == "{json?}"


def test_show_never_prints_control_characters_from_customer_text(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "\x1b[2J\x1b]0;owned\x07 \u202eevil\u2028 \x9b31m Zoë"
    event = _commitment(1, rep_name=hostile)
    kafka.add(_dead_letter("invalid_event", "sales.events", 0, 0, codec.encode(event), key=hostile.encode()))
    kafka.add(_dead_letter("not_avro", "sales.events", 0, 1, b"\x1b[31mred\x07\xff", detail=hostile))
    for args in (("--index", "0"), ("--index", "1"), ("--index", "0", "--json"), ("--index", "1", "--json")):
        code, out, _ = _run(capsys, "show", *args)
        assert code == 0
        assert not any(ch in out for ch in "\x1b\x07\u202e\u2028\x9b\xff"), args
        assert "Zoë" in out or "\\x1b[31mred" in out
    code, out, _ = _run(capsys, "show", "--index", "0")
    assert '\n  "event_id": "ev-1",\n' in out  # the value readable, one field a line
    assert "\\u001b[2J" in out
    # the JSON form still decodes to exactly what the record holds
    shown = json.loads(_run(capsys, "show", "--index", "0", "--json")[1])
    assert shown["value"]["rep_name"] == hostile
    assert shown["key"] == hostile


def test_show_a_timestamp_iso_8601_cannot_write_still_shows_the_event(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    far = 2**62
    kafka.add(
        _dead_letter("invalid_event", "sales.events", 0, 0, codec.encode(_commitment(1, deliver_by=far)))
    )
    code, out, _ = _run(capsys, "show")
    assert code == 0
    assert str(far) in out
    assert json.loads(_run(capsys, "show", "--json")[1])["value"]["deliver_by"] == far


def test_show_picks_by_index_from_either_end_and_refuses_out_of_range(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    newest = json.loads(_run(capsys, "show", "--index", "-1", "--json")[1])
    assert newest["reason"] == "not_avro"
    code, _, err = _run(capsys, "show", "--reason", "slack_refused", "--index", "2")
    assert code == 1
    assert err.strip() == "promise-ledger: --index 2 is out of range: 2 dead letters match"


def test_show_with_no_match_names_what_there_is(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    _mixed(kafka)
    code, _, err = _run(capsys, "show", "--reason", "invalid_events")
    assert code == 1
    assert "not_avro, slack_refused, timestamp_in_future" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("show", "--offset", "nonsense"),
        ("show", "--offset", "1:2", "--index", "0"),
        ("redrive", "--since", "yesterday"),
        ("redrive", "--until", "2026-02-25T10:00:00"),  # no zone
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


# -- redrive ---------------------------------------------------------------------------------------


def test_redrive_sends_the_original_key_and_value_back_to_the_partition_they_came_from(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    code, out, _ = _run(capsys, "redrive", "--reason", "timestamp_in_future", "--yes")
    assert code == 0
    assert out.strip() == "redriven 3 dead letters (sales.events: 3)"
    assert [(r.topic, r.partition, r.key, r.value) for r in kafka.sent] == [
        ("sales.events", n, b"cust", codec.encode(_commitment(n))) for n in range(3)
    ]
    assert [r.headers for r in kafka.sent] == [
        [(REDRIVEN_FROM_HEADER, f"alignment.dlq:0:{n}".encode())] for n in range(3)
    ]
    assert [m.dead_letter for m in kafka.marked] == [f"alignment.dlq:0:{n}" for n in range(3)]


def test_a_second_redrive_of_the_same_selection_sends_nothing_unless_again(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    assert _run(capsys, "redrive", "--topic", "sales.events", "--yes")[0] == 0
    code, out, err = _run(capsys, "redrive", "--topic", "sales.events", "--yes")
    assert (code, out) == (0, "")
    assert "skipping 3 already redriven" in err
    assert len(kafka.sent) == 3
    assert _run(capsys, "redrive", "--topic", "sales.events", "--again", "--yes")[0] == 0
    assert len(kafka.sent) == 6


def test_a_marker_left_by_an_earlier_topic_at_the_same_position_does_not_skip_a_new_dead_letter(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka.add(_dead_letter("invalid_event", "sales.events", 0, 0, codec.encode(_commitment(1))))
    assert _run(capsys, "redrive", "--yes")[0] == 0
    kafka.dlq.clear()  # the topic deleted and created again (`stack reset`); the markers stay
    kafka.add(_dead_letter("invalid_event", "sales.events", 0, 5, codec.encode(_commitment(2))))
    assert _run(capsys, "redrive", "--yes")[0] == 0
    assert [r.value for r in kafka.sent] == [codec.encode(_commitment(1)), codec.encode(_commitment(2))]


def test_redrive_selects_by_reason_topic_and_time(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    since = "2026-02-25T06:13:20.001Z"
    until = "2026-02-25T06:13:20.002Z"
    assert _run(capsys, "redrive", "--since", since, "--until", until, "--yes")[0] == 0
    assert [r.partition for r in kafka.sent] == [1]  # only the commitment dead-lettered at T0 + 1
    assert _run(capsys, "redrive", "--reason", "slack_refused", "--reason", "not_avro", "--yes")[0] == 0
    assert [r.topic for r in kafka.sent[1:]] == [ALERTS_TOPIC, ALERTS_TOPIC, "service.events"]


def test_a_dry_run_sends_nothing_and_marks_nothing(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    code, out, _ = _run(capsys, "redrive", "--dry-run")
    assert code == 0
    assert out.strip() == (
        f"dry run: would redrive 6 dead letters ({ALERTS_TOPIC}: 2, sales.events: 3, service.events: 1)"
    )
    assert kafka.sent == [] and kafka.marked == []


def test_redrive_without_yes_off_a_terminal_refuses(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _mixed(kafka)
    code, _, err = _run(capsys, "redrive", "--reason", "not_avro")
    assert code == 2
    assert "needs --yes" in err
    assert kafka.sent == []


def test_what_cannot_go_back_is_named_the_rest_is_sent_and_the_exit_status_is_1(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka.add(_dead_letter("invalid_event", "sales.events", 9, 0, b"x"))  # sales.events has 6 partitions
    kafka.add(_dead_letter("invalid_event", "gone.events", 0, 0, b"x"))
    kafka.add(b"not a dead letter")
    kafka.add(_dead_letter("invalid_event", "sales.events", 3, 0, b"ok"))
    code, out, err = _run(capsys, "redrive", "--yes")
    assert code == 1
    assert "sales.events has no partition 9" in err
    assert "topic gone.events does not exist" in err
    assert "not a DeadLetter record" in err
    assert [(r.topic, r.partition, r.value) for r in kafka.sent] == [("sales.events", 3, b"ok")]
    assert out.strip() == "redriven 1 dead letters (sales.events: 1)"


def test_a_dead_letter_without_its_partition_goes_to_the_keys_partition(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka.add(_dead_letter("slack_refused", ALERTS_TOPIC, -1, 4, b"alert"))
    assert _run(capsys, "redrive", "--yes")[0] == 0
    assert kafka.sent[0].partition is None


def test_a_failed_send_stops_the_redrive_and_the_next_run_sends_only_the_rest(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streams.dlq.redriving.CHUNK", 2)
    for n in range(5):
        kafka.add(
            _dead_letter("invalid_event", "sales.events", 0, n, codec.encode(_commitment(n)), at=T0 + n)
        )
    kafka.fail_on_send = 1
    code, _, err = _run(capsys, "redrive", "--yes")
    assert code == 1
    assert "stopped after 2 of 5 redriven" in err
    assert "Traceback" not in err
    kafka.fail_on_send = None
    assert _run(capsys, "redrive", "--yes")[0] == 0
    assert [r.value for r in kafka.sent] == [codec.encode(_commitment(n)) for n in range(5)]


def test_redrive_of_nothing_says_so(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "redrive", "--yes")
    assert (code, out) == (0, "")
    assert "no dead letters in alignment.dlq" in err


# -- reading a topic to its end (streams/dlq/kafka.py), against a fake consumer -----------------------


class _Record:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self.partition, self.offset, self.value, self.key = partition, offset, value, None


class FakeConsumer:
    """kafka-python's KafkaConsumer as read_to_end uses it: a topic whose log keeps growing."""

    def __init__(self, logs: dict[int, list[bytes]], start: dict[int, int] | None = None) -> None:
        self.logs = logs
        self.start = start or dict.fromkeys(logs, 0)
        self.positions: dict[Any, int] = {}
        self.polls = 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.logs) if topic == "alignment.dlq" else set()

    def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return {tp: self.start[tp.partition] + len(self.logs[tp.partition]) for tp in partitions}

    def assign(self, partitions: list[Any]) -> None:
        self.assigned = partitions

    def seek_to_beginning(self, *partitions: Any) -> None:
        for tp in partitions:
            self.positions[tp] = self.start[tp.partition]

    def position(self, tp: Any) -> int:
        return self.positions[tp]

    def poll(self, timeout_ms: int) -> dict[Any, list[_Record]]:
        self.polls += 1
        for log in self.logs.values():
            log.append(b"written meanwhile")  # a busy topic: the end moves while it is read
        batch = {}
        for tp in self.assigned:
            first = self.positions[tp]
            log = self.logs[tp.partition][first - self.start[tp.partition] :][:2]
            if log:
                batch[tp] = [_Record(tp.partition, first + i, value) for i, value in enumerate(log)]
                self.positions[tp] = first + len(log)
        return batch


def test_reading_stops_at_the_end_offsets_asked_first_and_an_empty_topic_at_once() -> None:
    from streams.dlq.kafka import read_to_end

    empty = FakeConsumer({0: [], 1: []})
    assert list(read_to_end(empty, "alignment.dlq")) == []
    assert empty.polls == 0
    busy = FakeConsumer({0: [b"a", b"b", b"c"], 1: [], 2: [b"d"]}, start={0: 0, 1: 0, 2: 40})
    records = list(read_to_end(busy, "alignment.dlq"))
    assert sorted((r.partition, r.offset, r.value) for r in records) == [
        (0, 0, b"a"),
        (0, 1, b"b"),
        (0, 2, b"c"),
        (2, 40, b"d"),
    ]


def test_a_missing_topic_and_a_read_that_stalls_are_errors_not_hangs() -> None:
    from streams.dlq.kafka import KafkaUnavailable, read_to_end

    with pytest.raises(KafkaUnavailable, match=r"topic alignment\.dlq-redriven does not exist"):
        list(read_to_end(FakeConsumer({0: [b"a"]}), "alignment.dlq-redriven"))
    stuck = FakeConsumer({0: [b"a"]})
    stuck.poll = lambda timeout_ms: {}  # type: ignore[method-assign]
    with pytest.raises(KafkaUnavailable, match="no progress"):
        list(read_to_end(stuck, "alignment.dlq", stall_s=0.2))


# -- the sink's dead letters (ClickHouse sink_dead_letters) ---------------------------------------

ALIGNMENT = {"alignment_id": "al-1", "type": "PROMISE_OPENED", "customer_id": "c-1", "at": T0,
             "promise_id": "p-1", "department": "SALES", "kind": "DELIVERY"}  # fmt: skip


@dataclass
class FakeClickHouse:
    """What the query over sink_dead_letters returns: one row per refused Kafka record."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    down: bool = False
    queries: list[tuple[str, Any]] = field(default_factory=list)

    def refused(self, topic: str, partition: int, offset: int, value: bytes, reason: str, at: int) -> None:
        self.rows.append(
            (topic, partition, offset, "alignment_events", reason, "TypeMismatchError: -1", value.hex(), at)
        )

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        self.queries.append((query, params))
        if self.down:
            from clickhouse_driver import errors

            raise errors.NetworkError("Code: 210. Connection refused (127.0.0.1:9000)")
        return self.rows


@pytest.fixture
def clickhouse(monkeypatch: pytest.MonkeyPatch, kafka: FakeKafka) -> FakeClickHouse:
    from streams.dlq.clickhouse import read_sink_letters

    fake = FakeClickHouse()
    monkeypatch.setattr(
        dlq_cli,
        "read_sink",
        lambda settings, selection: read_sink_letters(fake, selection.since_ms, selection.until_ms),
    )
    kafka.partitions[ALIGNMENT_TOPIC] = set(range(6))
    return fake


def _sink_mixed(kafka: FakeKafka, clickhouse: FakeClickHouse) -> None:
    _mixed(kafka)
    for n in range(2):
        value = codec.encode_alignment({**ALIGNMENT, "alignment_id": f"al-{n}"})
        clickhouse.refused(ALIGNMENT_TOPIC, 4, 100 + n, value, "clickhouse_refused", T0 + 30 + n)


def test_counts_include_the_sinks_refused_rows_marked_as_the_sinks(
    clickhouse: FakeClickHouse, kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _sink_mixed(kafka, clickhouse)
    code, out, err = _run(capsys, "counts", "--json")
    assert (code, err) == (0, "")
    assert [(r["origin"], r["reason"], r["topic"], r["dead_letters"]) for r in _json_lines(out)] == [
        ("worker", "timestamp_in_future", "sales.events", 3),
        ("notifier", "slack_refused", ALERTS_TOPIC, 2),
        ("sink", "clickhouse_refused", ALIGNMENT_TOPIC, 2),
        ("worker", "not_avro", "service.events", 1),
    ]
    code, out, _ = _run(capsys, "counts")
    assert code == 0 and "sink" in out and "8 dead letters" in out


def test_show_gives_a_sink_row_with_its_source_error_and_decoded_value(
    clickhouse: FakeClickHouse, kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _sink_mixed(kafka, clickhouse)
    code, out, _ = _run(capsys, "show", "--reason", "clickhouse_refused", "--index", "-1", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["origin"] == "sink"
    assert shown["dead_letter"] == f"sink_dead_letters:alignment_events:{ALIGNMENT_TOPIC}:4:101"
    assert (shown["topic"], shown["partition"], shown["offset"]) == (ALIGNMENT_TOPIC, 4, 101)
    assert shown["detail"] == "TypeMismatchError: -1"
    assert shown["value_format"] == "alignment"
    assert shown["value"]["alignment_id"] == "al-1"
    code, out, _ = _run(capsys, "show", "--reason", "clickhouse_refused")
    assert "set aside by  sink" in out


def test_when_clickhouse_is_away_counts_print_the_topics_and_say_so_in_one_line_exit_1(
    clickhouse: FakeClickHouse, kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _sink_mixed(kafka, clickhouse)
    clickhouse.down = True
    code, out, err = _run(capsys, "counts", "--json")
    assert code == 1
    assert sum(r["dead_letters"] for r in _json_lines(out)) == 6  # alignment.dlq's all the same
    assert len(err.splitlines()) == 1
    assert "sink_dead_letters" in err and "could not be read: NetworkError" in err


def test_redrive_sends_a_sink_rows_value_back_to_its_source_partition_once(
    clickhouse: FakeClickHouse, kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _sink_mixed(kafka, clickhouse)
    code, out, _ = _run(capsys, "redrive", "--reason", "clickhouse_refused", "--yes")
    assert code == 0 and "redriven 2 dead letters (alignment.events: 2)" in out
    where = f"sink_dead_letters:alignment_events:{ALIGNMENT_TOPIC}:4:100"
    assert kafka.sent[0] == Outgoing(
        ALIGNMENT_TOPIC,
        4,
        None,
        codec.encode_alignment({**ALIGNMENT, "alignment_id": "al-0"}),
        [(REDRIVEN_FROM_HEADER, where.encode())],
    )
    assert _run(capsys, "redrive", "--reason", "clickhouse_refused", "--yes")[0] == 0
    assert len(kafka.sent) == 2  # the markers skip what was sent
    # Refused again after the redrive: a new dead letter, which the old marker does not cover.
    clickhouse.rows[0] = (*clickhouse.rows[0][:7], T0 + 99)
    assert _run(capsys, "redrive", "--reason", "clickhouse_refused", "--yes")[0] == 0
    assert len(kafka.sent) == 3


def test_a_sink_row_copying_a_dead_letter_is_not_redriven_into_the_dead_letter_topic(
    clickhouse: FakeClickHouse, kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka.partitions["alignment.dlq"] = {0}
    clickhouse.refused("alignment.dlq", 0, 5, b"x", "undecodable", T0)
    code, _, err = _run(capsys, "redrive", "--yes")
    assert code == 1
    assert "cannot redrive sink_dead_letters:alignment_events:alignment.dlq:0:5" in err
    assert "a copy of a dead letter of alignment.dlq" in err
    assert kafka.sent == []


def test_the_sink_query_passes_the_time_bounds_as_parameters(
    clickhouse: FakeClickHouse, kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, "redrive", "--since", "2026-02-25", "--until", "2026-02-26", "--dry-run")
    query, params = clickhouse.queries[-1]
    assert params == {"since_ms": 1_771_977_600_000, "until_ms": 1_772_064_000_000}
    assert "2026" not in query and "1771977600000" not in query


def test_a_database_where_the_sink_never_ran_has_no_sink_dead_letters() -> None:
    from clickhouse_driver import errors

    from streams.dlq.clickhouse import read_sink_letters

    class NoTable:
        def execute(self, query: str, params: Any = None) -> Any:
            raise errors.ServerException("Table promise_ledger.sink_dead_letters doesn't exist.", code=60)

    assert read_sink_letters(NoTable()) == []
