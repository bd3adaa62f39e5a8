"""`promise-ledger replay` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fastavro

from tests.helpers import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
GOOD = FIXTURES / "service.jsonl"


def replay(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streams.cli.main", "replay", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=120)


def lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_alignment_events_are_json_lines_in_the_contract_key_order() -> None:
    result = replay(GOOD, "--until", "2026-04-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    events = lines(result)
    assert events and list(events[0]) == [
        "alignment_id", "type", "customer_id", "at", "promise_id", "department", "kind", "reason", "due_at",
        "ticket_id", "root_department", "promise_ids", "phrases", "claim_id", "campaign_id", "product",
        "rep_name", "agent_name", "deal_id", "order_id", "delay_s", "severity", "cause_event_id",
    ]  # fmt: skip
    assert replay(GOOD, "--until", "2026-04-01T00:00:00Z").stdout == result.stdout  # same ids, same order


def test_until_fires_the_deadlines_before_it(tmp_path: Path) -> None:
    morning = tmp_path / "morning.jsonl"  # events up to 03-01T08:00; t-2's first reply is due 03-02T00:00
    morning.write_text("\n".join(GOOD.read_text().splitlines()[:6]) + "\n")

    def broken(*until: str) -> list[str]:
        return [e["promise_id"] for e in lines(replay(morning, *until)) if e["type"] == "PROMISE_BROKEN"]

    assert broken() == []
    assert broken("--until", "2026-03-02T00:00:00Z") == []  # at the due time it is not late yet
    assert broken("--until", "2026-03-02T00:00:01Z") == ["t-2:first-reply"]


def test_bad_lines_are_reported_skipped_and_change_nothing_else(tmp_path: Path) -> None:
    good = GOOD.read_text().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    bad = [
        "this is not json",
        '{"type":"Gossip","event_id":"x"}',
        '{"type":"TicketResolved","event_id":"x","customer_id":"c-s1","occurred_at":"2026-03-01T00:00:00Z","source":"z"}',
        '{"type":"SatisfactionRated","event_id":"y","customer_id":"c-s1","occurred_at":"2026-03-01T00:00:00Z",'
        '"source":"z","ticket_id":"t-1","score":"five"}',
    ]
    mixed.write_text("\n".join(good[:3] + bad + [""] + good[3:]) + "\n")
    result = replay(mixed, "--until", "2026-04-01T00:00:00Z")
    assert result.returncode == 3
    assert result.stdout == replay(GOOD, "--until", "2026-04-01T00:00:00Z").stdout
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"{mixed}:4: not JSON")
    assert errors[1] == f"{mixed}:5: unknown event type 'Gossip'"
    assert errors[2] == f"{mixed}:6: TicketResolved: missing field 'ticket_id'"
    assert errors[3].startswith(f"{mixed}:7: SatisfactionRated: field 'score' must be an integer from 1 to 5")
    assert errors[4] == "promise-ledger replay: 4 line(s) rejected"


def test_strict_stops_at_the_first_bad_line(tmp_path: Path) -> None:
    good = GOOD.read_text().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([good[0], "{oops", *good[1:]]) + "\n")
    result = replay(mixed, "--strict")
    assert result.returncode == 3
    assert [e["cause_event_id"] for e in lines(result)] == ["v-1", "v-1"]  # only the first line's outputs
    assert result.stderr.splitlines()[0].startswith(f"{mixed}:2: not JSON")


def test_files_are_replayed_in_order_as_one_stream(tmp_path: Path) -> None:
    good = GOOD.read_text().splitlines()
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(good[:5]) + "\n")
    second.write_text("\n".join(good[5:]) + "\n")
    assert replay(first, second).stdout == replay(GOOD).stdout


def test_avro_container_input(tmp_path: Path) -> None:
    def record(name: str, extra: list[dict]) -> dict:
        common = [
            {"name": "event_id", "type": "string"},
            {"name": "customer_id", "type": "string"},
            {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "source", "type": "string"},
        ]
        return {"type": "record", "name": name, "namespace": "promise.service", "fields": common + extra}

    optional = {"type": ["null", "string"], "default": None}
    schema = fastavro.parse_schema(
        [
            record(
                "TicketOpened",
                [
                    {"name": "ticket_id", "type": "string"},
                    {"name": "category", "type": "string"},
                    {"name": "order_id", **optional},
                    {"name": "deal_id", **optional},
                    {"name": "text", **optional},
                ],
            ),
            record(
                "AgentReplied",
                [
                    {"name": "ticket_id", "type": "string"},
                    {"name": "agent_name", **optional},
                    {"name": "text", "type": "string"},
                ],
            ),
        ]
    )
    common = {"customer_id": "c-1", "source": "zendesk", "ticket_id": "t-1"}
    ticket = {**common, "event_id": "e-1", "occurred_at": 1_772_323_200_000, "category": "OTHER"}
    ticket.update(order_id=None, deal_id=None, text=None)
    reply = {
        **common,
        "event_id": "e-2",
        "occurred_at": 1_772_326_800_000,
        "agent_name": None,
        "text": "Obviously.",
    }
    path = tmp_path / "events.avro"
    with open(path, "wb") as handle:
        fastavro.writer(
            handle,
            schema,
            [("promise.service.TicketOpened", ticket), ("promise.service.AgentReplied", reply)],
        )
    result = replay(path)
    assert result.returncode == 0, result.stderr
    assert [(e["type"], e["at"]) for e in lines(result)] == [
        ("COMPLAINT_ATTRIBUTED", 1_772_323_200_000),
        ("PROMISE_OPENED", 1_772_323_200_000),
        ("PROMISE_KEPT", 1_772_326_800_000),
        ("TONE", 1_772_326_800_000),
    ]


def test_bad_arguments_are_one_line_errors_with_exit_2(tmp_path: Path) -> None:
    missing = replay(tmp_path / "absent.jsonl")
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        f"promise-ledger: cannot read {tmp_path / 'absent.jsonl'}",
    )
    bad_until = replay(GOOD, "--until", "next tuesday")
    assert (
        bad_until.returncode == 2 and bad_until.stderr.count("\n") == 1 and "bad --until" in bad_until.stderr
    )
    config = tmp_path / "engine.toml"
    config.write_text("grace_minutes = 5\n")
    bad_config = replay(GOOD, "--config", config)
    assert bad_config.returncode == 2 and "unknown key 'grace_minutes'" in bad_config.stderr
    assert replay().returncode == 2


def test_config_changes_the_rules(tmp_path: Path) -> None:
    config = tmp_path / "engine.toml"
    config.write_text("first_reply_hours = 1\n")
    result = replay(GOOD, "--config", config)
    assert result.returncode == 0
    broken = [e["promise_id"] for e in lines(result) if e["type"] == "PROMISE_BROKEN"]
    assert "t-1:first-reply" in broken  # replied after 5 h


def test_a_value_outside_the_limits_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    good = GOOD.read_text().splitlines()
    absurd = json.loads(next(line for line in good if '"TicketOpened"' in line))
    absurd.update(event_id="absurd", occurred_at="1900-01-01T00:00:00Z")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([good[0], json.dumps(absurd), *good[1:]]) + "\n")
    result = replay(path, "--until", "2026-04-01T00:00:00Z")
    assert result.returncode == 3
    assert result.stderr.splitlines()[0] == (
        f"{path}:2: TicketOpened: field 'occurred_at' must be from 2000-01-01T00:00:00Z and before "
        "2100-01-01T00:00:00Z, got 1900-01-01T00:00:00Z"
    )
    assert result.stdout == replay(GOOD, "--until", "2026-04-01T00:00:00Z").stdout  # nothing else changed
    config = tmp_path / "engine.toml"  # the limits come from the config's [limits] table
    config.write_text("[limits]\ntimestamps_from = 1900-01-01T00:00:00Z\n")
    assert "must be a moment from 1970-01-01T00:00:00Z" in replay(path, "--config", config).stderr
    config.write_text("[limits]\nmax_id_length = 3\n")
    assert f"{path}:1: " in replay(path, "--config", config).stderr


def test_a_conflicting_duplicate_is_reported_with_file_line_and_the_first_stands(tmp_path: Path) -> None:
    first = (
        '{"type":"TicketOpened","event_id":"dup","customer_id":"c","occurred_at":"2026-03-01T00:00:00Z",'
        '"source":"zendesk","ticket_id":"t","category":"OTHER"}'
    )
    path = tmp_path / "dup.jsonl"
    path.write_text(first + "\n" + first + "\n" + first.replace("OTHER", "LATE") + "\n")
    result = replay(path, "--until", "2026-03-05T00:00:00Z")
    assert result.returncode == 3
    assert f"{path}:3: conflicting_duplicate" in result.stderr and f"{path}:2:" not in result.stderr
    complaints = [e for e in lines(result) if e["type"] == "COMPLAINT_ATTRIBUTED"]
    assert [e["reason"] for e in complaints] == ["OTHER"]
