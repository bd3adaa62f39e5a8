"""Sink throughput against a raw clickhouse-driver insert of the same rows, in one run.

Usage: PYTHONPATH=. python benchmarks/sink.py [--rows 100000]
(with the stack up: deploy/local/stack up; eval "$(deploy/local/stack env)")

1. Publishes ``--rows`` alignment events (Avro) to a fresh alignment.events (not timed).
2. Raw: decodes them once, then times inserting the rows with clickhouse-driver in batches of 5,000.
3. Sink: times the sink loop (Kafka consume, decode, batch, insert, commit) over the same records into
   an empty table, until every row is in. Prints both rates and their ratio.
4. Decode alone: times fastavro decoding the same values, and prints the ratio a sink would reach if
   decoding and the raw insert were all it did (no Kafka, no row building): a ceiling for step 3.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

from clickhouse_driver import Client
from kafka import KafkaConsumer, KafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streams import codec  # noqa: E402
from streams.settings import ALIGNMENT_TOPIC, Settings  # noqa: E402
from streams.sink.batch import TableSink  # noqa: E402
from streams.sink.rows import ALIGNMENT_EVENTS, rows  # noqa: E402
from streams.sink.runner import Batching, Route, SinkRunner  # noqa: E402
from streams.sink.schema import apply_schema  # noqa: E402

START_MS = 1_780_000_000_000


def alignment(n: int) -> dict[str, object]:
    return {
        "alignment_id": f"{n:012d}",
        "type": ("PROMISE_OPENED", "PROMISE_KEPT", "PROMISE_BROKEN", "AT_RISK")[n % 4],
        "customer_id": f"cust-{n % 5000:05d}",
        "at": START_MS + n * 1000,
        "promise_id": f"commit-{n // 4:08d}",
        "department": ("MARKETING", "SALES", "SERVICE")[n % 3],
        "kind": "DELIVERY",
        "reason": "SHORT" if n % 4 == 2 else None,
        "due_at": START_MS + n * 1000 + 86_400_000,
        "rep_name": "Dana Kowalski",
    }


def client(settings: Settings, database: str, *, admin: bool = False) -> Client:
    """The pipeline's account; ``admin`` for DDL, which the pipeline's account may not run."""
    ch = settings.clickhouse
    user, password = ch.schema_owner() if admin else (ch.user, ch.password)
    return Client(host=ch.host, port=ch.port, user=user, password=password, database=database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    options = parser.parse_args()
    settings = Settings.from_env()
    subprocess.run(
        [sys.executable, str(REPO / "deploy/local/stack.py"), "reset"], check=True, stdout=subprocess.DEVNULL
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20, batch_size=512 * 1024)
    bodies = [alignment(n) for n in range(options.rows)]
    values = [codec.encode_alignment(body) for body in bodies]
    for body, value in zip(bodies, values, strict=True):
        producer.send(ALIGNMENT_TOPIC, key=str(body["customer_id"]).encode(), value=value)
    producer.flush()
    producer.close()

    admin = client(settings, settings.clickhouse.database, admin=True)
    databases = {}
    for name in ("raw", "sink"):
        databases[name] = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        admin.execute(f"CREATE DATABASE {databases[name]}")
    try:
        apply_schema(client(settings, databases["raw"], admin=True))
        raw = client(settings, databases["raw"])
        started = time.perf_counter()
        decoded = [codec.decode_alignment(value) for value in values]
        decode_s = time.perf_counter() - started
        started = time.perf_counter()
        for first in range(0, len(decoded), 5_000):
            raw.execute(
                ALIGNMENT_EVENTS.insert_statement, rows(ALIGNMENT_EVENTS, decoded[first : first + 5_000])
            )
        raw_s = time.perf_counter() - started
        raw_rate = options.rows / raw_s

        apply_schema(client(settings, databases["sink"], admin=True))
        sink_client = client(settings, databases["sink"])
        consumer = KafkaConsumer(
            ALIGNMENT_TOPIC,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5_000,
        )
        route = Route(codec.decode_alignment, TableSink(sink_client, ALIGNMENT_EVENTS))
        runner = SinkRunner(consumer, {ALIGNMENT_TOPIC: route}, Batching(max_rows=5_000, max_wait_s=0.5))
        consumer.poll(timeout_ms=5_000, max_records=1)  # join the group before the clock starts
        consumer.seek_to_beginning()
        started = time.perf_counter()
        while sink_client.execute("SELECT count() FROM alignment_events")[0][0] < options.rows:
            runner.poll_once()
        sink_rate = options.rows / (time.perf_counter() - started)
        consumer.close()
    finally:
        for database in databases.values():
            admin.execute(f"DROP DATABASE IF EXISTS {database}")
    print(f"rows                          {options.rows:>10,}")
    print(f"raw clickhouse-driver insert  {raw_rate:>10,.0f} rows/s")
    print(f"sink (consume, decode, insert){sink_rate:>10,.0f} rows/s")
    print(f"ratio sink / raw              {sink_rate / raw_rate:>10.2f}")
    print(f"Avro decode alone (fastavro)  {options.rows / decode_s:>10,.0f} rows/s")
    print(f"ceiling: decode + raw insert  {raw_s / (raw_s + decode_s):>10.2f} (ratio with no Kafka, no rows)")


if __name__ == "__main__":
    main()
