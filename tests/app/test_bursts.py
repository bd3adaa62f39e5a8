"""Every alert true under real timing (issue "Every alert true", SPEC §5): a worker started on empty
topics, with its idle clock on, then a simulated history published in one burst a few seconds later
(during the group join, just after, a while after), on an idle and on a loaded machine, and through a
restart in the middle of the burst: the live output equals `replay --until now` of the same events.

The idle clock is what made these go wrong: judged caught up on a stale view of the partitions' ends,
a worker moved its clock to wall time in the middle of the burst and broke promises that were kept.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.live_pipeline import (
    alignment_by_customer,
    assert_same_per_customer,
    collect_alignment,
    replay_file,
    simulated_company,
)

pytestmark = pytest.mark.stack

CUSTOMERS, DAYS = 400, 30  # about 16,000 events, as in the report


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


@contextmanager
def _busy_cpus(processes: int, seconds: float) -> Iterator[None]:
    """Other load on the machine: processes that keep a core busy each."""
    stop_at = time.monotonic() + seconds
    spinners = [multiprocessing.Process(target=_spin, args=(stop_at,)) for _ in range(processes)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()


def _report(live: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> str:
    """expected, got, missing, extra, customers differing: the figures the issue asks for."""
    live_ids = {e["alignment_id"] for e in live}
    replay_ids = {e["alignment_id"] for e in replayed}
    live_by, replay_by = alignment_by_customer(live), alignment_by_customer(replayed)
    for by in (live_by, replay_by):  # catalog outputs are ordered per claim only, as in the assertion
        by[None] = sorted(by.get(None, []), key=lambda e: e["alignment_id"])
    differing = sum(1 for c in set(live_by) | set(replay_by) if live_by.get(c) != replay_by.get(c))
    return (
        f"expected {len(replay_ids)}, got {len(live_ids)}, missing {len(replay_ids - live_ids)}, "
        f"extra {len(live_ids - replay_ids)}, customers differing {differing}"
    )


def _history(tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    path, events = simulated_company(tmp_path, customers=CUSTOMERS, days=DAYS)
    assert len(events) >= 15_000
    return events, replay_file(path, until=_now_iso())


def _settle(pipeline: Any, replayed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    collect_alignment(pipeline, len({e["alignment_id"] for e in replayed}), timeout_s=240)
    time.sleep(3)  # anything extra the worker would still publish
    return collect_alignment(pipeline, len(replayed) + 10**9, timeout_s=5)


#: seconds between the worker's start and the burst; 0 lands during the group join. The closing note's
#: series ran 0,2,4,6,9 (PL_BURST_DELAYS); CI runs two to stay inside its time.
DELAYS = [float(d) for d in os.environ.get("PL_BURST_DELAYS", "0,5").split(",")]


@pytest.mark.parametrize("delay_s", DELAYS)
def test_a_backfill_published_seconds_after_the_worker_starts_equals_replay(
    pipeline, tmp_path: Path, delay_s: float
) -> None:
    events, replayed = _history(tmp_path)
    pipeline.start_worker()
    time.sleep(delay_s)
    pipeline.publish(events)
    live = _settle(pipeline, replayed)
    print(f"delay {delay_s:.0f} s: {_report(live, replayed)}")
    assert_same_per_customer(live, replayed)


def test_a_backfill_on_a_loaded_machine_equals_replay(pipeline, tmp_path: Path) -> None:
    events, replayed = _history(tmp_path)
    with _busy_cpus(2, seconds=120):
        pipeline.start_worker()
        time.sleep(4)
        pipeline.publish(events)
        live = _settle(pipeline, replayed)
    print(f"loaded: {_report(live, replayed)}")
    assert_same_per_customer(live, replayed)


def test_a_worker_killed_in_the_middle_of_a_backfill_equals_replay_after_its_restart(
    pipeline, tmp_path: Path
) -> None:
    events, replayed = _history(tmp_path)
    worker = pipeline.start_worker()
    time.sleep(3)
    # One burst, published in chunks a moment apart (less than the worker's quiet period), so that it
    # is still coming while the worker dies and restarts.
    publisher = pipeline.publisher()
    chunks = [events[start : start + 500] for start in range(0, len(events), 500)]

    def publish() -> None:
        for chunk in chunks:
            publisher.publish_all(chunk)
            time.sleep(0.3)

    publishing = threading.Thread(target=publish)
    publishing.start()
    try:
        collect_alignment(pipeline, len(replayed) // 10, timeout_s=120)
        assert publishing.is_alive(), "the burst ended before the kill: nothing tested mid-burst"
        pipeline.kill(worker)
        pipeline.start_worker("worker-restarted")
    finally:
        publishing.join()
        publisher.close()
    live = _settle(pipeline, replayed)
    print(f"kill -9 mid-burst: {_report(live, replayed)}")
    assert_same_per_customer(live, replayed)
