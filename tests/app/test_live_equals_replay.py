"""SPEC §5: the live worker and `promise-ledger replay` give the same alignment events, per customer,
in the same order, with the same ids; also across a kill -9 of the worker mid-stream."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.live_pipeline import (
    NO_IDLE_CLOCK,
    assert_same_per_customer,
    collect_alignment,
    replay_file,
    simulated_company,
    wait_for,
    worker_metric,
)

pytestmark = pytest.mark.stack


def test_live_equals_replay_over_several_partitions(pipeline, tmp_path: Path) -> None:
    path, events = simulated_company(tmp_path, customers=220, days=25)
    assert len(events) >= 5_000
    replayed = replay_file(path)
    pipeline.start_worker(**NO_IDLE_CLOCK)
    pipeline.publish(events)
    live = collect_alignment(pipeline, len(replayed), timeout_s=180)
    assert len({e["customer_id"] for e in live}) > 100
    assert_same_per_customer(live, replayed)


def test_kill_9_mid_stream_then_restart_loses_nothing(pipeline, tmp_path: Path) -> None:
    path, events = simulated_company(tmp_path, customers=220, days=25)
    replayed = replay_file(path)
    worker = pipeline.start_worker(**NO_IDLE_CLOCK)
    cut = len(events) * 2 // 5
    pipeline.publish(events[:cut])
    collect_alignment(pipeline, len(replayed) // 5, timeout_s=120)  # the worker is busy with the stream
    pipeline.kill(worker)
    pipeline.publish(events[cut:])
    time.sleep(1)
    pipeline.start_worker("worker-restarted", **NO_IDLE_CLOCK)
    live = collect_alignment(pipeline, len(replayed), timeout_s=240)
    assert_same_per_customer(live, replayed)


def _owners_share_every_partition(web_ports: list[int]) -> bool:
    owned = [worker_metric(port, "ledger_assigned_partitions") for port in web_ports]
    return all(owned) and sum(owned) == 6


def test_two_workers_share_the_partitions_and_one_takes_over_when_the_other_is_killed(
    pipeline, tmp_path: Path
) -> None:
    path, events = simulated_company(tmp_path, customers=220, days=25)
    replayed = replay_file(path)
    cut = len(events) // 2
    pipeline.publish(events[:cut])
    # Started together, with a backlog: the group rebalances before either worker has committed.
    ports = {"worker-a": 16071, "worker-b": 16072}
    workers = {
        name: pipeline.start_worker(
            name, port, PL_WORKER_DATA_DIR=str(tmp_path / name), PL_SESSION_TIMEOUT_S="6", **NO_IDLE_CLOCK
        )
        for name, port in ports.items()
    }
    wait_for(
        lambda: _owners_share_every_partition(list(ports.values())), 60, "both workers owning partitions"
    )
    collect_alignment(pipeline, len(replayed) // 4, timeout_s=120)
    pipeline.kill(workers["worker-b"])
    pipeline.publish(events[cut:])
    live = collect_alignment(pipeline, len(replayed), timeout_s=240)
    assert_same_per_customer(live, replayed)
