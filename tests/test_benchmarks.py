"""The benchmark runner (`benchmarks/run.py`) in its short mode: every figure comes out.

Small sizes, so the figures themselves say little here; the full run (no --short) measures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[1]


def test_the_short_benchmark_run_produces_every_figure(stack) -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--short"],
        cwd=REPO,
        env={**os.environ, **stack.exports(), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    # The runner fails when a figure is missing from a benchmark's output.
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for rate in ("replay throughput", "worker, 1 process", "worker, 2 processes", "sink (rows/s)"):
        row = next(line for line in done.stdout.splitlines() if line.startswith(rate))
        assert float(re.findall(r"([\d,.]+)\s", row.split(")", 1)[1])[0].replace(",", "")) > 0, row
