"""`promise-ledger simulate --to-kafka --speed`: a company that lives faster than wall time, published
as its producers would (late by a jitter inside the grace, each customer's events in order)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from streams import codec
from streams.settings import INPUT_TOPICS
from streams.simulate import publication_schedule, simulate_events, story_shift_to_end_now

ROOT = Path(__file__).resolve().parent.parent
START_MS = 1_780_000_000_000
DAY_MS = 86_400_000


def _events() -> list[dict[str, Any]]:
    return list(simulate_events(customers=40, days=10, seed=3, start_ms=START_MS))


def test_each_customer_keeps_its_order_and_is_late_by_at_most_the_jitter() -> None:
    events = _events()
    jitter_ms = 120_000
    schedule = publication_schedule(events, speed=86_400, jitter_ms=jitter_ms, seed=1)
    assert sorted(id(e) for _, e in schedule) == sorted(id(e) for e in events)
    offsets = [offset for offset, _ in schedule]
    assert offsets == sorted(offsets)
    order: dict[str, list[str]] = defaultdict(list)
    for _, event in schedule:
        if event["customer_id"]:
            order[event["customer_id"]].append(event["event_id"])
    expected: dict[str, list[str]] = defaultdict(list)
    for event in events:
        if event["customer_id"]:
            expected[event["customer_id"]].append(event["event_id"])
    assert order == expected
    first = min(e["occurred_at"] for e in events)
    lateness_ms = [offset * 86_400 * 1000 - (e["occurred_at"] - first) for offset, e in schedule]
    assert min(lateness_ms) >= -1  # never before it occurred, in story time
    on_time = [late for late, (_, e) in zip(lateness_ms, schedule, strict=True) if not e["customer_id"]]
    assert max(abs(late) for late in on_time) <= 1  # catalog facts are not delayed
    # a customer's later event can wait for an earlier, delayed one; otherwise jitter bounds the delay
    assert sorted(lateness_ms)[len(lateness_ms) * 9 // 10] <= jitter_ms
    assert max(lateness_ms) > jitter_ms / 4  # and there is jitter


def test_a_faster_story_is_published_in_proportionally_less_time() -> None:
    events = _events()
    slow = publication_schedule(events, speed=1_000, jitter_ms=0, seed=1)
    fast = publication_schedule(events, speed=10_000, jitter_ms=0, seed=1)
    assert slow[-1][0] == pytest.approx(fast[-1][0] * 10)


def test_the_moved_story_ends_now_and_no_event_is_published_before_it_occurred() -> None:
    speed = 50_000.0
    now_ms = START_MS + 400 * DAY_MS
    shift = story_shift_to_end_now(
        publication_schedule(_events(), speed, jitter_ms=60_000, seed=2), speed, now_ms
    )
    moved = list(simulate_events(customers=40, days=10, seed=3, start_ms=START_MS + shift))
    schedule = publication_schedule(moved, speed, jitter_ms=60_000, seed=2)
    published_at = [now_ms + offset * 1000 for offset, _ in schedule]
    assert all(e["occurred_at"] <= at + 1 for at, (_, e) in zip(published_at, schedule, strict=True))
    last_event_at = max(e["occurred_at"] for e in moved)
    assert published_at[-1] - last_event_at <= 60_000 + 1  # the story's end is now (give or take jitter)


@pytest.mark.stack
def test_to_kafka_at_speed_publishes_every_event_after_it_occurred(pipeline) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PL_KAFKA_BOOTSTRAP": pipeline.bootstrap}
    speed = 4 * 86_400  # four days of story a second: the company's stories take a few seconds
    command = [sys.executable, "-m", "streams.cli.main", "simulate", "--to-kafka", "--customers", "40"]
    command += ["--days", "2", "--seed", "9", "--speed", str(speed), "--jitter", "30"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, check=False)
    took_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "published" in result.stderr
    published = int(result.stderr.split("published ")[1].split(" ")[0].replace(",", ""))
    records: list[tuple[int, dict[str, Any]]] = []
    for topic in INPUT_TOPICS:
        records += pipeline.read(
            topic, lambda r: (r.timestamp, codec.decode(r.value)), until=lambda got: False, timeout_s=3
        )
    customer_records = [(stamp, event) for stamp, event in records if event.get("customer_id")]
    assert len(customer_records) > 60
    assert all(event["occurred_at"] <= stamp for stamp, event in records)  # nothing from the future
    span_s = (max(e["occurred_at"] for _, e in records) - min(e["occurred_at"] for _, e in records)) / 1000
    assert took_s >= span_s / speed * 0.8  # paced by story time, not all at once
    catalog_copies = len(records) - len(customer_records)  # catalog facts go to every partition
    assert (
        published
        == len(customer_records) + catalog_copies // pipeline.stack.partitions_by_topic[INPUT_TOPICS[0]]
    )
