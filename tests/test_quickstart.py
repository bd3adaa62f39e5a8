"""README command (1) runs to the end on the local stack and shows the product doing its job."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.stack


def test_quickstart_shows_broken_promises_contradictions_slack_and_the_scorecard(stack) -> None:
    env = {**os.environ, **stack.exports(), "COLUMNS": "160"}
    env.pop("PL_SLACK_WEBHOOK_URL", None)
    done = subprocess.run(
        [sys.executable, "deploy/local/quickstart.py", "--customers", "40", "--days", "10"],
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
