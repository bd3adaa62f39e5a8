"""`promise-ledger sink`: alignment events, alerts and dead letters from Kafka into ClickHouse."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from streams.cli.errors import CommandError
from streams.cli.service import (
    clickhouse_client,
    configure_logging,
    kafka_consumer,
    serve_metrics,
    stop_on_signals,
)
from streams.retry import Backoff
from streams.settings import ALERTS_TOPIC, ALIGNMENT_TOPIC, DEAD_LETTER_TOPIC, SINK_GROUP, Settings

if TYPE_CHECKING:
    from clickhouse_driver import Client

log = logging.getLogger(__name__)


def _apply_schema_when_reachable(
    client: Client,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    from streams.sink.schema import apply_schema

    backoff = Backoff(0.5, 10.0)
    while True:
        try:
            apply_schema(client)
            return
        except Exception as error:
            if should_stop():
                raise CommandError("stopped before ClickHouse answered") from None
            log.warning("ClickHouse not ready (%s); retrying", type(error).__name__)
            sleep(backoff.next_delay())


@click.command("sink")
@click.option("--batch-rows", default=5_000, show_default=True, help="Insert when this many rows wait.")
@click.option("--batch-wait", default=1.0, show_default=True, help="Insert at least this often (seconds).")
@click.option("--group-id", default=SINK_GROUP, show_default=True, help="Kafka consumer group.")
@click.option(
    "--metrics-port",
    default=9108,
    show_default=True,
    help="Prometheus port (host: PL_METRICS_HOST); 0 = off.",
)
@click.option(
    "--max-poll-interval-ms",
    default=600_000,
    show_default=True,
    help="Kafka max.poll.interval.ms; the sink keeps polling (paused) while ClickHouse is down.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def command(
    batch_rows: int,
    batch_wait: float,
    group_id: str,
    metrics_port: int,
    max_poll_interval_ms: int,
    verbose: bool,
) -> None:
    """Write alignment events, alerts and dead letters into ClickHouse.

    \b
    Reads alignment.events, alignment.alerts and alignment.dlq; inserts in batches; commits Kafka
    offsets only after ClickHouse took the rows. While ClickHouse is down it retries with backoff and
    jitter, its partitions paused (it keeps its group membership), and loses nothing; rows replayed
    after a crash are counted once (ReplacingMergeTree + FINAL views). A row ClickHouse refuses for
    good goes to the sink_dead_letters table with the reason, and the rest flows on.
    Connection settings come from PL_* variables (see `deploy/local/stack env`). The schema is applied
    as PL_CLICKHOUSE_ADMIN_USER / PL_CLICKHOUSE_ADMIN_PASSWORD when set (the pipeline's own account
    needs no DDL rights then), else as PL_CLICKHOUSE_USER.
    """
    from streams import codec
    from streams.sink.batch import TableSink, dead_letter_sink
    from streams.sink.rows import ALERTS, ALIGNMENT_EVENTS, DEAD_LETTERS, dead_letter_record
    from streams.sink.runner import Batching, Route, SinkRunner

    configure_logging(verbose)
    settings = Settings.from_env()
    should_stop = stop_on_signals()
    serve_metrics(metrics_port)
    schema_client = clickhouse_client(settings, schema_owner=True)
    _apply_schema_when_reachable(schema_client, should_stop)
    schema_client.disconnect()
    client = clickhouse_client(settings)
    refused = dead_letter_sink(client)
    routes = {
        ALIGNMENT_TOPIC: Route(codec.decode_alignment, TableSink(client, ALIGNMENT_EVENTS, refused)),
        ALERTS_TOPIC: Route(codec.decode_alert, TableSink(client, ALERTS, refused)),
        DEAD_LETTER_TOPIC: Route(
            codec.decode_dead_letter,
            TableSink(client, DEAD_LETTERS, refused),
            shape=dead_letter_record,
        ),
    }
    consumer = kafka_consumer(settings, group_id, *routes, max_poll_interval_ms=max_poll_interval_ms)
    log.info("sink running: %s -> ClickHouse %s", ", ".join(routes), settings.clickhouse.database)
    runner = SinkRunner(consumer, routes, Batching(max_rows=batch_rows, max_wait_s=batch_wait))
    runner.run(should_stop)
    consumer.close()
