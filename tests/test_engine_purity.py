"""The engine and the contract stay pure: importable without Kafka, Faust, ClickHouse, or randomness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_engine_imports_no_io_library_and_no_random() -> None:
    probe = (
        "import sys, streams.engine, streams.contract\n"
        "banned = ('faust', 'kafka', 'aiokafka', 'clickhouse_driver', 'slack_sdk', 'random')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in banned))\n"
    )
    env = {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"
