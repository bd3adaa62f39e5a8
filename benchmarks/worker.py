"""Worker throughput against reading the same topics raw, in one run, on the local stack.

Usage: PYTHONPATH=. python benchmarks/worker.py [--events 60000] [--workers 1]
(with the stack up: deploy/local/stack up; eval "$(deploy/local/stack env)")

1. Empties the pipeline topics (deploy/local/stack reset).
2. Worker: starts ``--workers`` worker processes, waits until every partition has an owner (Faust's
   start-up and the group join are not counted), publishes ``--events`` simulated events and follows
   the workers' Prometheus pages from the first record applied until every record is. Prints
   events/s, and the publisher's rate (a worker faster than it would be measured at its pace).
3. Raw: an aiokafka consumer reads the same four department topics from the start and decodes every
   record with fastavro (the codec's decode). Prints records/s and the worker's ratio to it.
4. Faust alone: a no-op Faust agent (faust_intake.py) reads the same topics the worker's way. Prints
   records/s: what Faust's stream delivers before the worker does anything, a ceiling for step 2.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streams import codec  # noqa: E402
from streams.publish import EncodedEvent, EventPublisher, encode_event  # noqa: E402
from streams.settings import INPUT_TOPICS, Settings  # noqa: E402
from streams.simulate import simulate_events  # noqa: E402

DAY_MS = 86_400_000


def simulated_records(events: int) -> list[EncodedEvent]:
    """``events`` simulated events, encoded beforehand so that publishing them is quick."""
    start_ms = int(time.time() * 1000) // DAY_MS * DAY_MS - 90 * DAY_MS
    customers = max(10, events // 40)
    company = simulate_events(customers=customers, days=30, seed=3, start_ms=start_ms)
    return [encode_event(event) for event in itertools.islice(company, events)]


def publish(settings: Settings, records: list[EncodedEvent]) -> int:
    publisher = EventPublisher(settings.kafka_bootstrap, linger_ms=20)
    for record in records:
        publisher.send_encoded(record)
    publisher.flush()
    publisher.close(hand_over=False)  # the only publisher of the run: nothing comes after it
    return len(records)


def _input_partitions(settings: Settings) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for topic in INPUT_TOPICS for p in range(settings.partitions)]


async def read_raw(settings: Settings, total: int) -> float:
    """Seconds to read and decode the ``total`` records of the input topics from their start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = _input_partitions(settings)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        decoded = 0
        started = time.perf_counter()
        while decoded < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for record in records:
                    codec.decode(record.value)
                decoded += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def faust_alone(records: int, deadline_s: float) -> str:
    """The line faust_intake.py prints once its no-op agent has received ``records`` records."""
    with tempfile.TemporaryDirectory(prefix="faust-intake-") as data_dir, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / "faust_intake.py")],
            env={
                **os.environ,
                "BENCH_RECORDS": str(records),
                "BENCH_DATA_DIR": data_dir,
                "PYTHONPATH": str(REPO),
            },
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
            text=True,
        )
        timer = threading.Timer(deadline_s, os.killpg, (process.pid, signal.SIGKILL))
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith("faust stream alone"):
                    return line.rstrip()
        finally:
            timer.cancel()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        errors.seek(0)
        tail = errors.read()[-1500:].decode(errors="replace")
        raise SystemExit(
            f"the no-op Faust agent stopped (exit {process.returncode}) before {records:,} records, "
            f"or the {deadline_s:.0f} s deadline passed:\n{tail}"
        )


def worker_metrics(port: int) -> tuple[float, float]:
    """(input partitions owned, input records applied) from a worker's Prometheus page; zeros while
    it is starting."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            samples = [s for f in text_string_to_metric_families(response.read().decode()) for s in f.samples]
    except OSError:
        return 0.0, 0.0
    owned = sum(s.value for s in samples if s.name == "ledger_assigned_partitions")
    # A redelivered event (the simulation has a few) is taken without being applied again.
    counted = ("ledger_events_in_total", "ledger_redelivered_events_total")
    applied = sum(s.value for s in samples if s.name in counted)
    return owned, applied


def run_workers(
    settings: Settings, workers: int, publish_events: Callable[[], int], deadline_s: float
) -> tuple[int, int, float, float]:
    """Start the workers on the empty topics, wait until every partition has an owner (start-up and
    joining the group are not counted), then publish. Returns (events published, records on the
    topics, seconds the publisher took, seconds from the first record applied until the workers had
    applied them all)."""
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
        deadline = time.monotonic() + deadline_s
        while True:
            owned = [partitions for partitions, _ in (worker_metrics(port) for port in ports)]
            if all(owned) and sum(owned) == settings.partitions:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the workers did not share the partitions within {deadline_s:.0f} s")
            time.sleep(0.1)
        published_at = time.perf_counter()
        published = publish_events()
        publish_s = time.perf_counter() - published_at
        total = asyncio.run(records_on_input_topics(settings))
        first_applied: float | None = None
        while time.monotonic() < deadline:
            applied = sum(count for _, count in (worker_metrics(port) for port in ports))
            if first_applied is None and applied > 0:
                first_applied = time.perf_counter()
            if first_applied is not None and applied >= total:
                return published, total, publish_s, time.perf_counter() - first_applied
            time.sleep(0.05)
        raise SystemExit(f"the workers did not finish within {deadline_s:.0f} s")
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)


async def records_on_input_topics(settings: Settings) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(_input_partitions(settings))).values())
    finally:
        await consumer.stop()


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
    records = simulated_records(options.events)
    published, done, publish_s, seconds = run_workers(
        settings, options.workers, lambda: publish(settings, records), options.deadline
    )
    raw_rate = done / asyncio.run(read_raw(settings, done))
    rate = done / seconds
    print(f"events published           {published:>10,}  (records on the topics: {done:,})")
    print(f"publisher                  {done / publish_s:>10,.0f} records/s (input arrives no faster)")
    print(f"raw consume + decode       {raw_rate:>10,.0f} records/s")
    print(f"worker x{options.workers} (engine, outputs) {rate:>10,.0f} events/s")
    print(f"ratio worker / raw         {rate / raw_rate:>10.2f}")
    if options.workers == 1:
        print(faust_alone(done, options.deadline))


if __name__ == "__main__":
    main()
