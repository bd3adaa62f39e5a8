"""`promise-ledger simulate --to-file`: deterministic, and rich enough to exercise every rule."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from streams.contract import parse_event
from streams.engine import ALIGNMENT_TYPES
from streams.simulate import simulate_events

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streams.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)


def test_same_seed_same_file_other_seed_other_file(tmp_path: Path) -> None:
    paths = [tmp_path / f"{n}.jsonl" for n in range(3)]
    for path, seed in zip(paths, ("1", "1", "2"), strict=True):
        assert (
            cli("simulate", "--to-file", path, "--customers", "20", "--days", "10", "--seed", seed).returncode
            == 0
        )
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()


def test_every_alignment_type_occurs_when_replayed(tmp_path: Path) -> None:
    path = tmp_path / "company.jsonl"
    assert (
        cli("simulate", "--to-file", path, "--customers", "50", "--days", "30", "--seed", "0").returncode == 0
    )
    result = cli("replay", path, "--until", "2026-06-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["type"] for e in outputs} == set(ALIGNMENT_TYPES)
    reasons = {
        (e["type"], e["reason"])
        for e in outputs
        if e["type"] in ("AT_RISK", "PROMISE_BROKEN", "CONTRADICTION")
    }
    assert reasons >= {
        ("AT_RISK", reason) for reason in ("DEADLINE_NEAR", "STOCKOUT", "UNAPPROVED", "UNINFORMED_CHANGE")
    } | {("CONTRADICTION", "STOCKOUT"), ("CONTRADICTION", "CLAIM_WITHOUT_STOCK")}
    roots = {e["root_department"] for e in outputs if e["type"] == "COMPLAINT_ATTRIBUTED"}
    assert roots >= {"MARKETING", "SALES", "UNATTRIBUTED"}


def test_events_are_valid_and_in_publication_order() -> None:
    events = list(simulate_events(customers=30, days=20, seed=4))
    parsed = [parse_event(dict(event)) for event in events]
    assert len({type(event).__name__ for event in parsed}) == 17
    times = [event.occurred_at for event in parsed]
    late = sum(1 for before, after in itertools.pairwise(times) if after < before - 5 * 60_000)
    assert late <= len(times) // 50  # a few producers publish late; the rest is in time order
    assert len({e["event_id"] for e in events}) < len(events)  # and a few redeliveries


def test_without_a_destination_it_is_a_one_line_usage_error() -> None:
    result = cli("simulate")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--to-file" in result.stderr


def test_a_story_published_at_once_ends_before_now_so_no_worker_refuses_it() -> None:
    """`simulate --to-kafka` with its defaults: a live worker dead-letters events ahead of its clock,
    so the default story must end in the past, in full (issue "Every alert true")."""
    import time

    from streams.cli.simulate import _ending_before_now, _parse_start
    from streams.simulate import simulate_events

    default_start = _parse_start(None, 30, to_kafka=True)
    start = _ending_before_now(50, 30, 7, default_start)
    events = list(simulate_events(customers=50, days=30, seed=7, start_ms=start))
    now_ms = int(time.time() * 1000)
    assert max(int(e["occurred_at"]) for e in events) <= now_ms - 60_000
    untouched = list(simulate_events(customers=50, days=30, seed=7, start_ms=default_start))
    assert max(int(e["occurred_at"]) for e in untouched) > now_ms  # what the old default published
    shift = default_start - start
    assert [int(e["occurred_at"]) for e in events] == [int(e["occurred_at"]) - shift for e in untouched]
