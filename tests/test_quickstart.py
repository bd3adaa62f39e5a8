"""README command (1) runs to the end on the local stack and shows the product doing its job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from streams.contract import parse_event
from streams.engine import PromiseEngine
from streams.simulate import simulate_events
from tests.clickhouse_engines import pipeline_client
from tests.conftest import REPO_ROOT

CUSTOMERS, DAYS, SEED = 40, 10, 1

pytestmark = pytest.mark.stack


def test_quickstart_shows_broken_promises_contradictions_slack_and_the_scorecard(stack) -> None:
    env = {**os.environ, **stack.exports(), "COLUMNS": "160"}
    env.pop("PL_SLACK_WEBHOOK_URL", None)
    done = subprocess.run(
        [sys.executable, "deploy/local/quickstart.py", "--customers", str(CUSTOMERS), "--days", str(DAYS)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for shown in ("PROMISE_BROKEN", "CONTRADICTION", "#promise-alerts (local Slack)", "broken promise"):
        assert shown in out
    scorecard = out[out.index("Promise Ledger scorecard") :]
    for department in ("MARKETING", "SALES", "SERVICE"):
        assert department in scorecard
    # The worker starts just before the quickstart's backfill (issue "Every alert true"): its ledger
    # is still exactly what replay says of the same company.
    client = pipeline_client(stack, "promise_ledger_quickstart")
    live = {row[0] for row in client.execute("SELECT alignment_id FROM alignment_events FINAL")}
    expected = _replayed_ids()
    assert (len(expected - live), len(live - expected)) == (0, 0), f"of {len(expected)} expected"


def _replayed_ids() -> set[str]:
    """The alignment ids `replay --until now` gives for the company the quickstart publishes."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 21)
    engine = PromiseEngine()
    ids = set()
    for decoded in simulate_events(CUSTOMERS, DAYS, SEED, int(start.timestamp() * 1000)):
        ids.update(e.alignment_id for e in engine.process(parse_event(decoded)))
    ids.update(e.alignment_id for e in engine.advance_to(int(time.time() * 1000)))
    return ids
