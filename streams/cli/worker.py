"""`promise-ledger worker`: the Faust worker (the same as `faust -A streams.app worker`)."""

from __future__ import annotations

import os
import sys

import click


@click.command("worker")
@click.option("--web-port", type=int, default=None, help="Port of /metrics [PL_WORKER_WEB_PORT, 6066].")
@click.option(
    "--loglevel",
    type=click.Choice(["crit", "error", "warn", "info", "debug"]),
    default="info",
    show_default=True,
    # At "warn" Faust adds a terminal spinner that lowers the root logger to DEBUG so that every
    # debug record of aiokafka and Faust is built and handled: a tenth of the worker's CPU.
    help="Log level; 'warn' and above also start Faust's terminal spinner, which costs CPU.",
)
def command(web_port: int | None, loglevel: str) -> None:
    """Correlate events live: the four department topics in; alignment events, alerts, dead letters out.

    \b
    One engine per partition, its state in a Faust table backed by a changelog topic, so a restarted
    or added worker resumes where the last one stopped. Start more workers (each with its own
    --web-port) to share the partitions. Settings: PL_KAFKA_BOOTSTRAP, PL_PARTITIONS, PL_ENGINE_CONFIG
    (TOML), PL_IDLE_AFTER_S; Prometheus metrics at http://$PL_METRICS_HOST:PORT/metrics (127.0.0.1
    unless set; containers set 0.0.0.0).
    """
    if web_port is not None:
        os.environ["PL_WORKER_WEB_PORT"] = str(web_port)
    from streams.app import app

    # Faust's own CLI runs the worker: signals, rebalances and shutdown stay Faust's.
    sys.argv = [
        "promise-ledger worker",
        "worker",
        "--loglevel",
        loglevel,
        "--web-port",
        str(app.conf.web_port),
    ]
    app.main()
