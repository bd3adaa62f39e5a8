"""README command (1): the whole product on the local stack, end to end, in a few minutes.

A simulated company (campaigns, reps, orders, stockouts, tickets) is published to Kafka as its source
systems would; the real worker, sink and notifier run as separate processes; Slack is a local
receiver that prints each message as Slack would show it (or your real webhook, if
PL_SLACK_WEBHOOK_URL is set). Then the scorecard is read back from ClickHouse.

The quickstart empties the local stack's topics first (`deploy/local/stack reset`) and writes its rows to
its own ClickHouse database, so every run tells the same story.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from clickhouse_driver import Client  # noqa: E402
from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from streams import codec  # noqa: E402
from streams.publish import EventPublisher  # noqa: E402
from streams.report import read_scorecard, scorecard_table  # noqa: E402
from streams.settings import ALIGNMENT_TOPIC, Settings  # noqa: E402
from streams.simulate import simulate_events  # noqa: E402
from streams.slack.receiver import SlackLikeReceiver, as_slack_shows_it  # noqa: E402

QUICKSTART_DATABASE = "promise_ledger_quickstart"
console = Console()


def _run(*args: str) -> None:
    subprocess.run(args, check=True, cwd=REPO)


class Services:
    """The pipeline's processes, each logging to its own file, all stopped on exit."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", *args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"quickstart: {name} stopped (exit {process.returncode}):\n{tail}")

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _alignment_counts(settings: Settings) -> collections.Counter[str]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(ALIGNMENT_TOPIC, p) for p in consumer.partitions_for_topic(ALIGNMENT_TOPIC)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        counts: collections.Counter[str] = collections.Counter()
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                counts.update(codec.decode_alignment(record.value)["type"] for record in records)
        return counts
    finally:
        consumer.close()


def _end_offsets(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def _wait_until_settled(
    settings: Settings, services: Services, slack: SlackLikeReceiver, client: Client
) -> None:
    """Until alignment events stop arriving, ClickHouse holds them all and Slack has had its say."""
    deadline = time.monotonic() + 150
    last, stable_since = -1, time.monotonic()
    with console.status("the pipeline is correlating...") as status:
        while time.monotonic() < deadline:
            services.check()
            produced = _end_offsets(settings, ALIGNMENT_TOPIC)
            try:
                stored = client.execute("SELECT count() FROM alignment_events FINAL")[0][0]
            except Exception:
                stored = 0
            status.update(
                f"{produced} alignment events on Kafka, {stored} in ClickHouse, "
                f"{len(slack.messages)} Slack messages"
            )
            if produced != last:
                last, stable_since = produced, time.monotonic()
            settled = time.monotonic() - stable_since > 8 and produced and stored >= produced
            if settled and slack.messages and time.monotonic() - slack.messages[-1].received_at > 6:
                return
            time.sleep(1)
    console.print("[yellow]stopped waiting after 150 s; showing what arrived[/yellow]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/local/quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=80)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="leave the pipeline processes running")
    options = parser.parse_args(argv)

    _run(sys.executable, "deploy/local/stack.py", "reset")
    settings = Settings.from_env()
    ch = settings.clickhouse
    admin_user, admin_password = ch.schema_owner()
    admin = Client(host=ch.host, port=ch.port, user=admin_user, password=admin_password, database=ch.database)
    admin.execute(f"DROP DATABASE IF EXISTS {QUICKSTART_DATABASE}")
    admin.execute(f"CREATE DATABASE {QUICKSTART_DATABASE}")
    admin.disconnect()
    client = Client(
        host=ch.host, port=ch.port, user=ch.user, password=ch.password, database=QUICKSTART_DATABASE
    )

    real_webhook = os.environ.get("PL_SLACK_WEBHOOK_URL") or os.environ.get("PL_SLACK_WEBHOOK_URL_FILE")
    slack = SlackLikeReceiver(
        on_message=None
        if real_webhook
        else lambda payload: console.print(
            Panel(as_slack_shows_it(payload), title="#promise-alerts (local Slack)", border_style="magenta")
        )
    )
    logs = Path(tempfile.mkdtemp(prefix="promise-ledger-quickstart-"))
    with slack:
        env = {**os.environ, "PL_CLICKHOUSE_DATABASE": QUICKSTART_DATABASE, "PYTHONUNBUFFERED": "1"}
        if not real_webhook:
            env["PL_SLACK_WEBHOOK_URL"] = slack.url
        services = Services(env, logs)
        try:
            services.start("worker", "worker", "--loglevel", "warn")
            services.start("sink", "sink", "--batch-wait", "0.5")
            services.start("notifier", "notify", "--window", "3")

            start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            start -= timedelta(days=options.days + 21)
            events = list(
                simulate_events(options.customers, options.days, options.seed, int(start.timestamp() * 1000))
            )
            publisher = EventPublisher(settings.kafka_bootstrap)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(
                    f"publishing {len(events)} events of a simulated company", total=len(events)
                )
                for number, event in enumerate(events, 1):
                    publisher.publish(event)
                    if number % 250 == 0:
                        progress.update(task, completed=number)
            publisher.flush()
            publisher.close()
            console.print(
                f"published {len(events)} events ({options.customers} customers, {options.days} days "
                f"from {start:%Y-%m-%d}) to marketing/sales/fulfilment/service.events"
            )
            _wait_until_settled(settings, services, slack, client)
        finally:
            if not options.keep:
                services.stop()

    counts = _alignment_counts(settings)
    console.rule("what the pipeline said")
    for kind, count in counts.most_common():
        console.print(f"  {kind:<22}{count:>6}")
    console.print(f"  Slack messages: {len(slack.messages)} (alerts of one cause grouped in one message)")
    console.print(scorecard_table(read_scorecard(client, start.date()), start.date()))
    console.print(
        Panel(
            "Topics:      in: marketing/sales/fulfilment/service.events\n"
            "             out: alignment.events, alignment.alerts, alignment.dlq\n"
            f"ClickHouse:  database {QUICKSTART_DATABASE}: alignment_events, alerts, promise_state,\n"
            "             scorecard_daily, scorecard_drilldown\n"
            f"             PL_CLICKHOUSE_DATABASE={QUICKSTART_DATABASE} promise-ledger report\n"
            "Real Slack:  PL_SLACK_WEBHOOK_URL=https://hooks.slack.com/services/… deploy/local/quickstart\n"
            f"Logs:        {logs}\n"
            "Offline:     promise-ledger simulate --to-file co.jsonl && promise-ledger replay co.jsonl",
            title="where to look next",
        )
    )
    broken_alerts = counts["PROMISE_BROKEN"]
    if not (broken_alerts and counts["CONTRADICTION"] and slack.messages):
        console.print("[red]quickstart: expected broken promises, contradictions and Slack messages[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
