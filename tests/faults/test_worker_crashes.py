"""kill -9 of the worker at random points, five times during one stream of 20k+ events: downstream,
de-duplicated by alignment_id, nothing differs from replay; ClickHouse counts what replay counts; no
dedup key reaches Slack twice."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.slack.receiver import SlackLikeReceiver
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import (
    NO_IDLE_CLOCK,
    assert_same_per_customer,
    collect_alignment,
    replay_file,
    simulated_company,
    wait_for,
)

pytestmark = [pytest.mark.stack, pytest.mark.faults]

KILLS = 5
ALERTING = {"PROMISE_BROKEN", "CONTRADICTION"}


def _distinct(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    return [e for e in events if not (e["alignment_id"] in seen or seen.add(e["alignment_id"]))]


def _dedup_key(event: dict[str, Any]) -> str:
    if event["type"] == "CONTRADICTION":
        return f"contradiction:{event['claim_id']}:{event['product']}"
    return event["promise_id"]


def _scorecard(stack: Any, database: str) -> dict[str, tuple[int, int, int]]:
    """Promises made, kept and broken per department, as the shared scorecard reads them."""
    client = pipeline_client(stack, database)
    try:
        rows = client.execute(
            "SELECT department, sum(made), sum(kept), sum(broken) FROM scorecard_daily"
            " WHERE department IN ('MARKETING', 'SALES', 'SERVICE') GROUP BY department"
        )
        return {department: (made, kept, broken) for department, made, kept, broken in rows}
    except Exception:  # the sink creates its tables when it starts
        return {}
    finally:
        client.disconnect()


def _replayed_scorecard(replayed: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    counts: Counter[tuple[str, str]] = Counter(
        (e["department"], e["type"]) for e in replayed if e["department"]
    )
    departments = {department for department, _ in counts}
    return {
        d: (counts[d, "PROMISE_OPENED"], counts[d, "PROMISE_KEPT"], counts[d, "PROMISE_BROKEN"])
        for d in departments
    }


def _alerts_in_slack(slack: SlackLikeReceiver) -> int:
    """Alerts delivered: every message's title starts with how many alerts it carries."""
    titles = [delivery.payload["text"] for delivery in slack.messages]
    return sum(int(match.group(1)) for title in titles if (match := re.match(r"(\d+) ", title)))


def test_five_kill_9s_of_the_worker_during_one_stream_lose_nothing_and_double_nothing(
    pipeline, stack, scratch_database, tmp_path: Path
) -> None:
    path, events = simulated_company(tmp_path, customers=640, days=25)
    assert len(events) >= 20_000
    replayed = _distinct(replay_file(path))
    alert_keys = {_dedup_key(e) for e in replayed if e["type"] in ALERTING}
    rng = random.Random(8)
    kill_points = sorted(rng.uniform(0.05, 0.85) * len(replayed) for _ in range(KILLS))
    worker_env = {**NO_IDLE_CLOCK, "PL_SESSION_TIMEOUT_S": "6"}

    with SlackLikeReceiver() as slack:
        pipeline.start(
            "sink",
            "sink",
            "--batch-wait",
            "0.5",
            "--metrics-port",
            "0",
            env={"PL_CLICKHOUSE_DATABASE": scratch_database},
        )
        pipeline.start(
            "notify",
            "notify",
            "--window",
            "15",
            "--metrics-port",
            "0",
            env={"PL_SLACK_WEBHOOK_URL": slack.url},
        )
        worker = pipeline.start_worker("worker-0", **worker_env)
        pipeline.publish(events)
        for number, point in enumerate(kill_points, start=1):
            collect_alignment(pipeline, int(point), timeout_s=180)
            pipeline.kill(worker)
            worker = pipeline.start_worker(f"worker-{number}", **worker_env)
        live = collect_alignment(pipeline, len(replayed), timeout_s=300)
        assert_same_per_customer(live, replayed)

        expected_scorecard = _replayed_scorecard(replayed)
        try:
            wait_for(lambda: _scorecard(stack, scratch_database) == expected_scorecard, 120, "the scorecard")
        except AssertionError:
            assert _scorecard(stack, scratch_database) == expected_scorecard  # shows how they differ
            raise
        wait_for(lambda: _alerts_in_slack(slack) >= len(alert_keys), 240, "every alert in Slack")
        pipeline.stop_all()

    assert _alerts_in_slack(slack) == len(alert_keys)
