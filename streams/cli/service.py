"""What every long-running command shares: logging, stopping on SIGINT/SIGTERM, metrics, Kafka clients."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import start_http_server

from streams.settings import Settings, metrics_host

if TYPE_CHECKING:
    from clickhouse_driver import Client
    from kafka import KafkaConsumer


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python is chatty at INFO about every connection; its warnings still show.
    logging.getLogger("kafka").setLevel(logging.WARNING)


def stop_on_signals() -> Callable[[], bool]:
    """A ``should_stop()`` that turns true on the first SIGINT or SIGTERM."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logging.getLogger(__name__).info("stopping on %s", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stopping.is_set


def serve_metrics(port: int) -> None:
    """Prometheus text on http://$PL_METRICS_HOST:PORT/metrics (127.0.0.1 unless set; 0 turns it off)."""
    if port:
        start_http_server(port, addr=metrics_host())


def kafka_consumer(
    settings: Settings, group_id: str, *topics: str, max_poll_interval_ms: int = 600_000
) -> KafkaConsumer:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=max_poll_interval_ms,
    )
    # Joining the group before the client knows the topics' partitions yields an empty assignment that
    # lasts until the next metadata refresh (5 minutes): learn them first (a just-created topic may
    # take a moment to show up).
    deadline = time.monotonic() + 30
    while any(not consumer.partitions_for_topic(topic) for topic in topics) and time.monotonic() < deadline:
        time.sleep(0.2)
    consumer.subscribe(list(topics))
    return consumer


def clickhouse_client(settings: Settings, *, schema_owner: bool = False) -> Client:
    """A client as the pipeline's account, or as the account that owns the schema."""
    from clickhouse_driver import Client

    # The driver logs every refused connection with a traceback; callers report failures themselves.
    logging.getLogger("clickhouse_driver.connection").setLevel(logging.ERROR)

    ch = settings.clickhouse
    user, password = ch.schema_owner() if schema_owner else (ch.user, ch.password)
    return Client(
        host=ch.host,
        port=ch.port,
        user=user,
        password=password,
        database=ch.database,
        connect_timeout=5,
        send_receive_timeout=30,
    )
