"""SPEC §5: the live worker and `promise-ledger replay` give the same alignment events, per customer,
in the same order, with the same ids; also across a kill -9 of the worker mid-stream."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams import codec
from streams.contract import decode_json_line
from streams.settings import ALIGNMENT_TOPIC

pytestmark = pytest.mark.stack

# Only events move the clock here, as in `replay` without --until: the idle clock would (rightly) fire
# every deadline of this historical company the moment the worker is caught up.
NO_IDLE_CLOCK = {"PL_IDLE_AFTER_S": "86400"}


def _company(tmp_path: Path, customers: int, days: int) -> tuple[Path, list[dict[str, Any]]]:
    start = (datetime.now(UTC) - timedelta(days=days + 40)).strftime("%Y-%m-%d")
    path = tmp_path / "company.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "simulate",
            "--to-file",
            str(path),
            "--customers",
            str(customers),
            "--days",
            str(days),
            "--seed",
            "11",
            "--start",
            start,
        ],
        check=True,
    )
    events = [decode_json_line(line) for line in path.read_text().splitlines()]
    return path, events


def _replay(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "replay", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _by_customer(events: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """Per customer, first occurrence of every alignment_id, in order (at-least-once delivery)."""
    seen: set[str] = set()
    grouped: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["alignment_id"] not in seen:
            seen.add(event["alignment_id"])
            grouped[event["customer_id"]].append(event)
    return grouped


def _collect(pipeline: Any, expected: int, timeout_s: float) -> list[dict[str, Any]]:
    return pipeline.read(
        ALIGNMENT_TOPIC,
        lambda record: codec.decode_alignment(record.value),
        until=lambda got: len({e["alignment_id"] for e in got}) >= expected,
        timeout_s=timeout_s,
    )


def _assert_same(live: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> None:
    live_by_customer, replay_by_customer = _by_customer(live), _by_customer(replayed)
    assert set(live_by_customer) == set(replay_by_customer)
    # Catalog outputs (CONTRADICTION) are keyed by claim: Kafka orders them per claim, not across claims.
    catalog_order = lambda events: sorted(events, key=lambda e: e["alignment_id"])  # noqa: E731
    assert catalog_order(live_by_customer.pop(None, [])) == catalog_order(replay_by_customer.pop(None, []))
    for customer, expected in replay_by_customer.items():
        assert live_by_customer[customer] == expected, f"customer {customer} differs"


def test_live_equals_replay_over_several_partitions(pipeline, tmp_path: Path) -> None:
    path, events = _company(tmp_path, customers=220, days=25)
    assert len(events) >= 5_000
    replayed = _replay(path)
    pipeline.start_worker(**NO_IDLE_CLOCK)
    pipeline.publish(events)
    live = _collect(pipeline, len(replayed), timeout_s=180)
    assert len({e["customer_id"] for e in live}) > 100
    _assert_same(live, replayed)


def test_kill_9_mid_stream_then_restart_loses_nothing(pipeline, tmp_path: Path) -> None:
    path, events = _company(tmp_path, customers=220, days=25)
    replayed = _replay(path)
    worker = pipeline.start_worker(**NO_IDLE_CLOCK)
    cut = len(events) * 2 // 5
    pipeline.publish(events[:cut])
    _collect(pipeline, len(replayed) // 5, timeout_s=120)  # the worker is busy with the stream
    pipeline.kill(worker)
    pipeline.publish(events[cut:])
    time.sleep(1)
    pipeline.start_worker("worker-restarted", **NO_IDLE_CLOCK)
    live = _collect(pipeline, len(replayed), timeout_s=240)
    _assert_same(live, replayed)
