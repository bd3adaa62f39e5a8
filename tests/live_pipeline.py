"""The pipeline run for real on the local stack: empty topics, worker processes, readers of outputs.

Each live test starts from empty topics and consumer groups, because the engine's clock is event time:
a worker that has seen today's events would rightly judge a test's older events against today.
"""

from __future__ import annotations

import difflib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams import codec
from streams.contract import decode_json_line, decoded_to_json_line
from streams.engine import EngineConfig
from streams.publish import EventPublisher
from streams.settings import ALIGNMENT_TOPIC

HOUR_MS = 3_600_000


class Pipeline:
    def __init__(self, stack: Any, stack_module: ModuleType, logs: Path) -> None:
        self.stack = stack
        self.stack_module = stack_module
        self.bootstrap: str = stack.kafka_bootstrap
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, **stack.exports(), "PYTHONUNBUFFERED": "1"}

    # -- topics --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Every pipeline topic empty again, no committed offsets, no table state."""
        self.stack_module.Kafka(self.stack).reset()

    # -- processes -----------------------------------------------------------------------------

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start_worker(
        self, name: str = "worker", web_port: int = 16066, **env: str
    ) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", "--web-port", str(web_port), "--loglevel", "info", env=env)

    def log_of(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(timeout=60)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    # -- data ----------------------------------------------------------------------------------

    def publisher(self) -> EventPublisher:
        return EventPublisher(self.bootstrap)

    def publish(self, events: Iterable[Mapping[str, Any]]) -> int:
        publisher = self.publisher()
        try:
            return publisher.publish_all(events)
        finally:
            publisher.close()

    def read(
        self,
        topic: str,
        decode: Callable[[bytes], Any],
        until: Callable[[list[Any]], bool],
        timeout_s: float = 60.0,
    ) -> list[Any]:
        """Everything on the topic from the start, decoded, once ``until(records)`` holds (or timeout)."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            records: list[Any] = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=300).values():
                    records.extend(decode(r) for r in batch)
                if until(records):
                    break
            return records
        finally:
            consumer.close()


def broken_commitment_story(customer: str, start: int) -> list[dict[str, Any]]:
    """A commitment due a day after it was made, and a ticket three days later that moves the clock."""
    return [
        {
            "type": "CommitmentMade",
            "event_id": f"{customer}-commit",
            "customer_id": customer,
            "occurred_at": start,
            "source": "salesforce",
            "commitment_id": f"{customer}-commitment",
            "deal_id": f"{customer}-deal",
            "rep_name": f"Rep {customer}",
            "product": "lamp",
            "quantity": 2,
            "deliver_by": start + 24 * HOUR_MS,
            "unit_price": 49.0,
            "features": [],
        },
        {
            "type": "TicketOpened",
            "event_id": f"{customer}-ticket",
            "customer_id": customer,
            "occurred_at": start + 72 * HOUR_MS,
            "source": "zendesk",
            "ticket_id": f"{customer}-t1",
            "category": "LATE",
            "order_id": None,
            "deal_id": f"{customer}-deal",
            "text": "where is my order?",
        },
    ]


def metric_sum(page: str, sample: str) -> float:
    """A sample's value in a Prometheus text page, summed over its labels."""
    families = text_string_to_metric_families(page)
    return sum(s.value for family in families for s in family.samples if s.name == sample)


def worker_metric(web_port: int, sample: str) -> float:
    """A sample's value on a worker's Prometheus page, summed over its labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as response:
        return metric_sum(response.read().decode(), sample)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.5) -> None:
    """Poll ``condition`` until it holds; an exception while polling (a service restarting) counts as
    not yet. Fails the test with ``what`` when ``timeout_s`` runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


# -- a simulated company, replayed and run live ---------------------------------------------------

# Only events move the clock here, as in `replay` without --until: the idle clock would (rightly) fire
# every deadline of this historical company the moment the worker is caught up.
NO_IDLE_CLOCK = {"PL_IDLE_AFTER_S": "86400"}


def simulated_company(tmp_path: Path, customers: int, days: int) -> tuple[Path, list[dict[str, Any]]]:
    start = (datetime.now(UTC) - timedelta(days=days + 40)).strftime("%Y-%m-%d")
    path = tmp_path / "company.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "simulate",
            "--to-file",
            str(path),
            "--customers",
            str(customers),
            "--days",
            str(days),
            "--seed",
            "11",
            "--start",
            start,
        ],
        check=True,
    )
    events = [decode_json_line(line) for line in path.read_text().splitlines()]
    # Replay runs one clock; the live worker one per partition, and at the end of the stream a quiet
    # partition's clock lags replay's. A last catalog fact, which every partition receives, brings
    # every clock to where replay's ends, and a grace period past the last event, so that no partition
    # still holds a real event back for arrivals within the grace (replay drains what it holds).
    closing = {
        "type": "StockChanged",
        "event_id": "closing-stock-count",
        "customer_id": None,
        "occurred_at": max(event["occurred_at"] for event in events) + EngineConfig().grace_ms + 1,
        "source": "tests",
        "product": "closing-stock-count",
        "on_hand": 0,
    }
    with path.open("ab") as file:
        file.write(decoded_to_json_line(closing) + b"\n")
    return path, [*events, closing]


def replay_file(path: Path, until: str | None = None) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "replay",
            str(path),
            *(["--until", until] if until else []),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def alignment_by_customer(events: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """Per customer, first occurrence of every alignment_id, in order (at-least-once delivery)."""
    seen: set[str] = set()
    grouped: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["alignment_id"] not in seen:
            seen.add(event["alignment_id"])
            grouped[event["customer_id"]].append(event)
    return grouped


def collect_alignment(pipeline: Any, expected: int, timeout_s: float) -> list[dict[str, Any]]:
    return pipeline.read(
        ALIGNMENT_TOPIC,
        lambda record: codec.decode_alignment(record.value),
        until=lambda got: len({e["alignment_id"] for e in got}) >= expected,
        timeout_s=timeout_s,
    )


def assert_same_per_customer(live: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> None:
    live_by_customer, replay_by_customer = alignment_by_customer(live), alignment_by_customer(replayed)
    assert set(live_by_customer) == set(replay_by_customer)
    # Catalog outputs (CONTRADICTION) are keyed by claim: Kafka orders them per claim, not across claims.
    catalog_order = lambda events: sorted(events, key=lambda e: e["alignment_id"])  # noqa: E731
    assert catalog_order(live_by_customer.pop(None, [])) == catalog_order(replay_by_customer.pop(None, []))
    differing = [c for c, expected in replay_by_customer.items() if live_by_customer[c] != expected]
    if differing:
        customer = differing[0]
        story = lambda events: [f"{e['type']} {e['promise_id']} by {e['cause_event_id']}" for e in events]  # noqa: E731
        diff = difflib.unified_diff(
            story(replay_by_customer[customer]),
            story(live_by_customer[customer]),
            "replay",
            "live",
            lineterm="",
        )
        raise AssertionError(f"{len(differing)} customers differ; {customer}:\n" + "\n".join(diff))
