"""Faust's own intake: a no-op agent over the four department topics, the worker's way (noack, events,
ack each), to show what Faust's stream alone delivers on this machine: a ceiling for the worker.

Usage: BENCH_RECORDS=N BENCH_DATA_DIR=DIR PYTHONPATH=. python benchmarks/faust_intake.py
(run by benchmarks/worker.py over the records it published, which stops it once it has printed)

The agent reads the topics from their start under a fresh consumer group and prints its rate from its
first record to its N-th.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import faust

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streams.settings import INPUT_TOPICS, Settings  # noqa: E402

settings = Settings.from_env()
expected = int(os.environ["BENCH_RECORDS"])
app = faust.App(
    f"faust-intake-{uuid.uuid4().hex[:8]}",
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="memory://",
    topic_partitions=settings.partitions,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    topic_disable_leader=True,  # no leader topic left behind; the run's consumer group expires
    datadir=os.environ["BENCH_DATA_DIR"],
)
raw = app.topic(*INPUT_TOPICS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


@app.agent(raw)
async def take_in(stream: faust.StreamT[Any]) -> None:
    unacked = stream.noack()
    received = 0
    started = 0.0
    async for event in unacked.events():
        if not received:
            started = time.perf_counter()
        received += 1
        await unacked.ack(event)
        if received == expected:
            rate = (expected - 1) / (time.perf_counter() - started)
            # Faust's worker redirects sys.stdout into its logger; the figure goes to the real stdout.
            print(f"faust stream alone         {rate:>10,.0f} records/s", file=sys.__stdout__, flush=True)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "error"]
    app.main()
