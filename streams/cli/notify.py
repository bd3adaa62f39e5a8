"""`promise-ledger notify`: broken-promise and contradiction alerts to Slack."""

from __future__ import annotations

import logging
import os

import click

from streams.cli.errors import EXIT_USAGE, CommandError
from streams.cli.service import configure_logging, kafka_consumer, serve_metrics, stop_on_signals
from streams.settings import ALERTS_TOPIC, NOTIFIER_GROUP, Settings

log = logging.getLogger(__name__)


@click.command("notify")
@click.option("--window", default=10.0, show_default=True, help="Seconds to gather alerts of one cause.")
@click.option("--group-id", default=NOTIFIER_GROUP, show_default=True, help="Kafka consumer group.")
@click.option(
    "--metrics-port",
    default=9109,
    show_default=True,
    help="Prometheus port (host: PL_METRICS_HOST); 0 = off.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (the webhook URL is never logged).")
def command(window: float, group_id: str, metrics_port: int, verbose: bool) -> None:
    """Post alerts from alignment.alerts to a Slack incoming webhook.

    \b
    The webhook URL comes from PL_SLACK_WEBHOOK_URL, or from the file named by
    PL_SLACK_WEBHOOK_URL_FILE. Alerts of one cause (one stockout, one rep's late deliveries) within
    --window seconds become one message; a dedup key reaches Slack once, across restarts; Slack's
    429 Retry-After is honoured and at most one message a second is sent. A message Slack refuses
    for good (a 4xx other than 429) goes, alert by alert, to the dead-letter topic with Slack's
    answer, and the alerts behind it flow on.
    """
    from streams.slack.transport import SlackWebhook, webhook_url_from_env

    url = webhook_url_from_env(os.environ)
    if not url:
        raise CommandError("no webhook: set PL_SLACK_WEBHOOK_URL or PL_SLACK_WEBHOOK_URL_FILE", EXIT_USAGE)
    from streams import codec
    from streams.slack.durable import KafkaDeadLetters
    from streams.slack.notifier import Notifier, run_notifier
    from streams.slack.sent_keys import KafkaSentKeys

    configure_logging(verbose)
    settings = Settings.from_env()
    should_stop = stop_on_signals()
    serve_metrics(metrics_port)
    sent = KafkaSentKeys.connect(settings.kafka_bootstrap)
    dead_letters = KafkaDeadLetters.connect(settings.kafka_bootstrap)
    notifier = Notifier(SlackWebhook(url), sent, dead_letters, window_s=window)
    consumer = kafka_consumer(settings, group_id, ALERTS_TOPIC)
    log.info("notifier running: %s -> Slack (%d dedup keys remembered)", ALERTS_TOPIC, len(sent))
    run_notifier(consumer, notifier, codec.decode_alert, should_stop)
    consumer.close()
    sent.close()
    dead_letters.close()
