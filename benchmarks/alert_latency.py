"""Alert latency on an idle stream: from a promise's due time + grace to its alert on alignment.alerts,
and to the Slack-like receiver, with no other input moving the clock.

Usage: PYTHONPATH=. python benchmarks/alert_latency.py [--promises 20]
(with the stack up: deploy/local/stack up; eval "$(deploy/local/stack env)")

Publishes ``--promises`` commitments whose due + grace fall 5 s apart in the near future, with the worker
and the notifier (window 1 s) running, then waits for every alert. Prints p50 and p99 of both delays.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streams import codec  # noqa: E402
from streams.engine import EngineConfig  # noqa: E402
from streams.publish import EventPublisher  # noqa: E402
from streams.settings import ALERTS_TOPIC, Settings  # noqa: E402
from streams.slack.receiver import SlackLikeReceiver  # noqa: E402

GRACE_MS = EngineConfig().grace_ms


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--promises", type=int, default=20)
    parser.add_argument("--spacing-s", type=float, default=5.0)
    options = parser.parse_args()
    settings = Settings.from_env()
    subprocess.run(
        [sys.executable, str(REPO / "deploy/local/stack.py"), "reset"], check=True, stdout=subprocess.DEVNULL
    )
    slack_arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(payload: dict) -> None:
        now = time.time()
        with lock:
            for block in payload.get("blocks", []):
                text = block.get("elements", [{}])[0].get("text", "") if block["type"] == "context" else ""
                if "promise-ledger explain" in text:
                    slack_arrivals.setdefault(text.split()[-1].strip("`"), now)

    with SlackLikeReceiver(on_message=on_message) as slack:
        env = {**os.environ, "PL_SLACK_WEBHOOK_URL": slack.url}
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "streams.cli.main", *args],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for args in (
                ["worker", "--web-port", "16120"],
                ["notify", "--window", "1", "--metrics-port", "0"],
            )
        ]
        try:
            time.sleep(10)  # both join their groups
            publisher = EventPublisher(settings.kafka_bootstrap)
            now_ms = int(time.time() * 1000)
            due: dict[str, int] = {}
            for n in range(options.promises):
                promise = f"latency-{n}"
                due[promise] = now_ms - GRACE_MS + int((n + 1) * options.spacing_s * 1000)
                publisher.publish(
                    {
                        "type": "CommitmentMade",
                        "event_id": f"{promise}-e",
                        "customer_id": f"cust-{n}",
                        "occurred_at": now_ms - 3_600_000,
                        "source": "bench",
                        "commitment_id": promise,
                        "deal_id": f"deal-{n}",
                        "rep_name": None,
                        "product": "lamp",
                        "quantity": 1,
                        "deliver_by": due[promise],
                        "unit_price": None,
                        "features": [],
                    }
                )
            publisher.flush()
            publisher.close()
            consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
            partitions = [TopicPartition(ALERTS_TOPIC, p) for p in range(settings.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            topic_arrivals: dict[str, float] = {}
            deadline = time.time() + options.promises * options.spacing_s + 60
            while time.time() < deadline and (
                len(topic_arrivals) < len(due) or len(slack_arrivals) < len(due)
            ):
                for records in consumer.poll(timeout_ms=100).values():
                    for record in records:
                        topic_arrivals.setdefault(codec.decode_alert(record.value)["dedup_key"], time.time())
            consumer.close()
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
    to_topic = [topic_arrivals[p] - (due[p] + GRACE_MS) / 1000 for p in due if p in topic_arrivals]
    to_slack = [slack_arrivals[p] - (due[p] + GRACE_MS) / 1000 for p in due if p in slack_arrivals]
    print(
        f"alerts measured            {len(to_topic):>6} on the topic, {len(to_slack)} in Slack, of {len(due)}"
    )
    for label, delays in (("due+grace -> alerts topic", to_topic), ("due+grace -> Slack", to_slack)):
        if delays:
            p50, p99 = statistics.median(delays), percentile(delays, 0.99)
            print(f"{label:<27}p50 {p50:6.2f} s   p99 {p99:6.2f} s")


if __name__ == "__main__":
    main()
