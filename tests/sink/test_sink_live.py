"""`promise-ledger sink` on the real stack: every row once, through redelivery, a row ClickHouse cannot
take and ClickHouse outages (one longer than the consumer's poll interval)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest
from clickhouse_driver import Client
from kafka import KafkaAdminClient

from streams import codec
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC, DEAD_LETTER_TOPIC
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import metric_sum, wait_for

pytestmark = pytest.mark.stack

DAY_MS = 86_400_000
START_MS = 1_772_000_000_000


def _alignment(n: int) -> dict[str, Any]:
    return {
        "alignment_id": f"al-{n:05d}",
        "type": "PROMISE_OPENED" if n % 2 else "PROMISE_BROKEN",
        "customer_id": f"c-{n % 37}",
        "at": START_MS + (n % 5) * DAY_MS,
        "promise_id": f"p-{n}",
        "department": ("MARKETING", "SALES", "SERVICE")[n % 3],
        "kind": "DELIVERY",
    }


def _alert(n: int) -> dict[str, Any]:
    return {
        "alert_id": f"al-{n:05d}",
        "dedup_key": f"p-{n}",
        "group_key": "sales:DELIVERY",
        "severity": "HIGH",
        "type": "PROMISE_BROKEN",
        "at": START_MS,
    }


def _publish(pipeline: Any, numbers: range) -> None:
    publisher = pipeline.publisher()
    for n in numbers:
        body = _alignment(n)
        publisher.send_raw(ALIGNMENT_TOPIC, codec.encode_alignment(body), body["customer_id"].encode())
        if body["type"] == "PROMISE_BROKEN":
            publisher.send_raw(ALERTS_TOPIC, codec.encode_alert(_alert(n)), body["customer_id"].encode())
    publisher.flush()
    publisher.close()


def _counts(client: Client) -> tuple[int, int, int]:
    events = client.execute("SELECT count(), uniqExact(alignment_id) FROM alignment_events FINAL")[0]
    alerts = client.execute("SELECT count() FROM alerts FINAL")[0][0]
    return events[0], events[1], alerts


def test_every_row_lands_once_even_when_the_batch_is_redelivered(pipeline, stack, scratch_database) -> None:
    sink = pipeline.start(
        "sink",
        "sink",
        "--batch-wait",
        "0.2",
        "--metrics-port",
        "0",
        env={"PL_CLICKHOUSE_DATABASE": scratch_database},
    )
    _publish(pipeline, range(2_000))
    _publish(pipeline, range(500))  # the same records again, as after a producer retry
    client = pipeline_client(stack, scratch_database)
    wait_for(lambda: _counts(client) == (2_000, 2_000, 1_000), 60, "2000 events and 1000 alerts")
    made = client.execute("SELECT sum(made) FROM scorecard_daily")[0][0]
    assert made == 1_000
    assert sink.poll() is None, pipeline.log_of("sink")


@pytest.mark.parametrize("outage_s", [30, pytest.param(60, marks=pytest.mark.faults)])
def test_clickhouse_down_loses_nothing_and_the_lag_shows(
    pipeline, stack, stack_module, scratch_database, outage_s: int
) -> None:
    pipeline.start(
        "sink",
        "sink",
        "--batch-wait",
        "0.2",
        "--metrics-port",
        "19108",
        env={"PL_CLICKHOUSE_DATABASE": scratch_database},
    )
    client = pipeline_client(stack, scratch_database)
    _publish(pipeline, range(1_000))
    wait_for(lambda: _counts(client)[0] == 1_000, 60, "the first half")
    clickhouse = stack_module.ClickHouse(stack)
    assert clickhouse.process.stop()
    try:
        _publish(pipeline, range(1_000, 2_000))
        time.sleep(outage_s)
        metrics = urllib.request.urlopen("http://127.0.0.1:19108/metrics", timeout=5).read().decode()
        assert "ledger_sink_clickhouse_up 0.0" in metrics
        # the sink stopped reading while it retries: the backlog waits in Kafka, and the metrics show it
        backlog = metric_sum(metrics, "ledger_sink_backlog_records")
        assert backlog >= 1_500, metrics
    finally:
        clickhouse.up()
    recovered = time.monotonic()
    client = pipeline_client(stack, scratch_database)
    wait_for(lambda: _counts(client) == (2_000, 2_000, 1_000), 90, "every row after the outage")
    stored_after_s = time.monotonic() - recovered
    print(f"\nClickHouse down {outage_s}s, backlog {backlog:.0f}; all stored {stored_after_s:.1f}s after")
    assert pipeline.log_of("sink").count(stack.clickhouse_password) == 0


def test_a_row_clickhouse_cannot_take_is_set_aside_and_the_sink_goes_on(
    pipeline, stack, scratch_database
) -> None:
    sink = pipeline.start(
        "sink",
        "sink",
        "--batch-wait",
        "0.2",
        "--metrics-port",
        "19110",
        env={"PL_CLICKHOUSE_DATABASE": scratch_database},
    )
    publisher = pipeline.publisher()
    refused = {**_alignment(500), "alignment_id": "al-refused", "at": -1}  # from a deliver_by of -1
    for body in [*map(_alignment, range(300)), refused, *map(_alignment, range(300, 600))]:
        publisher.send_raw(ALIGNMENT_TOPIC, codec.encode_alignment(body), body["customer_id"].encode())
    publisher.flush()
    publisher.close()
    client = pipeline_client(stack, scratch_database)
    wait_for(lambda: _counts(client)[:2] == (600, 600), 60, "the 600 good rows")
    wait_for(
        lambda: client.execute("SELECT count() FROM sink_dead_letters FINAL")[0][0] == 1,
        30,
        "the refused row",
    )
    [(reason, error, table)] = client.execute(
        "SELECT reason, error, target_table FROM sink_dead_letters FINAL"
    )
    assert (reason, table) == ("unstorable_value", "alignment_events")
    assert error.startswith("at_ms: -1")
    metrics = urllib.request.urlopen("http://127.0.0.1:19110/metrics", timeout=5).read().decode()
    assert metric_sum(metrics, "ledger_sink_rows_refused_total") == 1
    assert "ledger_sink_clickhouse_up 1.0" in metrics
    assert sink.poll() is None, pipeline.log_of("sink")


class _CuttableProxy:
    """A TCP proxy in front of ClickHouse that the test can cut: while cut, live connections are closed
    and new ones are accepted and closed at once, so every insert fails the way an outage fails it."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            if not self._open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def mend(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.cut()
        self._server.close()


def _members(bootstrap: str, group: str) -> tuple[str, list[str]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        description = admin.describe_groups([group])[group]
    finally:
        admin.close()
    return description["group_state"], sorted(member["member_id"] for member in description["members"])


def test_an_outage_longer_than_the_poll_interval_keeps_the_partitions_and_loses_nothing(
    pipeline, stack, scratch_database
) -> None:
    max_poll_interval_s = 6
    group = f"sink-outage-{uuid.uuid4().hex[:8]}"
    proxy = _CuttableProxy(stack.clickhouse_port)
    try:
        pipeline.start(
            "sink",
            "sink",
            "--batch-wait",
            "0.2",
            "--metrics-port",
            "19111",
            "--group-id",
            group,
            "--max-poll-interval-ms",
            str(max_poll_interval_s * 1000),
            env={"PL_CLICKHOUSE_DATABASE": scratch_database, "PL_CLICKHOUSE_PORT": str(proxy.port)},
        )
        client = pipeline_client(stack, scratch_database)  # straight to ClickHouse, not through the proxy
        _publish(pipeline, range(1_000))
        wait_for(lambda: _counts(client)[0] == 1_000, 60, "the rows before the outage")
        state, before = _members(stack.kafka_bootstrap, group)
        assert state == "Stable" and len(before) == 1

        proxy.cut()
        _publish(pipeline, range(1_000, 2_000))
        time.sleep(4 * max_poll_interval_s)
        metrics = urllib.request.urlopen("http://127.0.0.1:19111/metrics", timeout=5).read().decode()
        assert "ledger_sink_clickhouse_up 0.0" in metrics
        read = (ALIGNMENT_TOPIC, ALERTS_TOPIC, DEAD_LETTER_TOPIC)
        assert metric_sum(metrics, "ledger_sink_paused_partitions") == sum(
            stack.partitions_by_topic[t] for t in read
        )
        assert _members(stack.kafka_bootstrap, group) == ("Stable", before)  # no rebalance, same member

        proxy.mend()
        wait_for(lambda: _counts(client) == (2_000, 2_000, 1_000), 90, "every row after the outage")
        assert _members(stack.kafka_bootstrap, group) == ("Stable", before)
        metrics = urllib.request.urlopen("http://127.0.0.1:19111/metrics", timeout=5).read().decode()
        assert metric_sum(metrics, "ledger_sink_paused_partitions") == 0
        log = pipeline.log_of("sink")
        assert "Consumer poll timeout has expired" not in log
        assert log.count("partitions paused") >= 1 and "partitions resumed" in log
    finally:
        proxy.close()
