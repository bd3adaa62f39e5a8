"""Worker throughput against reading the same topics raw, in one run, on the local stack.

Usage: PYTHONPATH=. python benchmarks/worker.py [--events 60000] [--workers 1]
(with the stack up: deploy/local/stack up; eval "$(deploy/local/stack env)")

1. Empties the pipeline topics (deploy/local/stack reset) and publishes ``--events`` simulated events.
2. Raw: an aiokafka consumer reads the four department topics from the start and decodes every record
   with fastavro (the codec's decode). Prints records/s.
3. Worker: starts ``--workers`` worker processes and follows the consumer group's committed offsets;
   the rate is measured from the first commit to the last (Faust's start-up is not counted). Prints
   events/s and the ratio to raw.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streams import codec  # noqa: E402
from streams.publish import EventPublisher  # noqa: E402
from streams.settings import APP_ID, INPUT_TOPICS, Settings  # noqa: E402
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


def committed_total(admin: KafkaAdminClient) -> int:
    try:
        offsets = admin.list_group_offsets(APP_ID).get(APP_ID, {})
    except Exception:  # the group does not exist until the worker joins
        return 0
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic in INPUT_TOPICS and meta.offset > 0)


def run_workers(settings: Settings, workers: int, total: int, deadline_s: float) -> tuple[int, float]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    env = {**os.environ, "PL_IDLE_AFTER_S": "86400"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", "worker", "--web-port", str(16100 + n)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for n in range(workers)
    ]
    try:
        first_seen = first_time = None
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            done = committed_total(admin)
            if done and first_seen is None:
                first_seen, first_time = done, time.perf_counter()
            if done >= total:
                assert first_seen is not None and first_time is not None
                return done - first_seen, time.perf_counter() - first_time
            time.sleep(0.25)
        raise SystemExit(f"the workers did not finish within {deadline_s:.0f} s")
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        admin.close()


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
