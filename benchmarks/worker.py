"""Worker throughput against reading the same topics raw, in one run, on the local stack.

Usage: PYTHONPATH=. python benchmarks/worker.py [--events 60000] [--workers 1]
(with the stack up: deploy/local/stack up; eval "$(deploy/local/stack env)")

1. Empties the pipeline topics (deploy/local/stack reset) and publishes ``--events`` simulated events.
2. Raw: an aiokafka consumer reads the four department topics from the start and decodes every record
   with fastavro (the codec's decode). Prints records/s.
3. Worker: starts ``--workers`` worker processes and follows their Prometheus pages; the rate counts
   the records applied from the moment every partition has an owner (Faust's start-up and the group
   join are not counted) until every record is applied. Prints events/s and the ratio to raw.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streams import codec  # noqa: E402
from streams.publish import EventPublisher  # noqa: E402
from streams.settings import INPUT_TOPICS, Settings  # noqa: E402
from streams.simulate import simulate_events  # noqa: E402

DAY_MS = 86_400_000


def publish(settings: Settings, events: int) -> int:
    start_ms = int(time.time() * 1000) // DAY_MS * DAY_MS - 90 * DAY_MS
    customers = max(10, events // 40)
    publisher = EventPublisher(settings.kafka_bootstrap)
    published = 0
    for event in simulate_events(customers=customers, days=30, seed=3, start_ms=start_ms):
        publisher.publish(event)
        published += 1
        if published >= events:
            break
    publisher.flush()
    publisher.close()
    return published


async def read_raw(settings: Settings) -> tuple[int, float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for topic in INPUT_TOPICS for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        total = sum(end.values())
        decoded = 0
        started = time.perf_counter()
        while decoded < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for record in records:
                    codec.decode(record.value)
                decoded += len(records)
        return decoded, time.perf_counter() - started
    finally:
        await consumer.stop()


def worker_metrics(port: int) -> tuple[float, float]:
    """(input partitions owned, input records applied) from a worker's Prometheus page; zeros while
    it is starting."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            samples = [s for f in text_string_to_metric_families(response.read().decode()) for s in f.samples]
    except OSError:
        return 0.0, 0.0
    owned = sum(s.value for s in samples if s.name == "ledger_assigned_partitions")
    applied = sum(s.value for s in samples if s.name == "ledger_events_in_total")
    return owned, applied


def run_workers(settings: Settings, workers: int, total: int, deadline_s: float) -> tuple[float, float]:
    """Records applied and seconds taken, from the moment every partition has an owner (start-up and
    joining the group are not counted) until the workers have applied every record."""
    env = {**os.environ, "PL_IDLE_AFTER_S": "86400"}
    ports = [16100 + n for n in range(workers)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", "worker", "--web-port", str(port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for port in ports
    ]
    try:
        started: tuple[float, float] | None = None  # (records applied, time) when the group settled
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            readings = [worker_metrics(port) for port in ports]
            applied = sum(count for _, count in readings)
            owned = [partitions for partitions, _ in readings]
            if started is None and all(owned) and sum(owned) == settings.partitions:
                started = applied, time.perf_counter()
            if started is not None and applied >= total:
                return applied - started[0], time.perf_counter() - started[1]
            time.sleep(0.05)
        raise SystemExit(f"the workers did not finish within {deadline_s:.0f} s")
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=900, help="give up after this many seconds")
    options = parser.parse_args()
    settings = Settings.from_env()
    subprocess.run(
        [sys.executable, str(REPO / "deploy/local/stack.py"), "reset"], check=True, stdout=subprocess.DEVNULL
    )
    published = publish(settings, options.events)
    raw_count, raw_seconds = asyncio.run(read_raw(settings))
    raw_rate = raw_count / raw_seconds
    done, seconds = run_workers(settings, options.workers, raw_count, options.deadline)
    rate = done / seconds
    print(f"events published           {published:>10,}  (records on the topics: {raw_count:,})")
    print(f"raw consume + decode       {raw_rate:>10,.0f} records/s")
    print(f"worker x{options.workers} (engine, outputs) {rate:>10,.0f} events/s")
    print(f"ratio worker / raw         {rate / raw_rate:>10.2f}")


if __name__ == "__main__":
    main()
