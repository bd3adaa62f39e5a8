"""Broken-promise alerts to Slack incoming webhooks: grouped by cause, escaped, paced, de-duplicated."""

from streams.slack.message import AlertGroup, render
from streams.slack.text import escape
from streams.slack.transport import DeliveryFailed, DeliveryRefused, SlackWebhook, WebhookTransport

__all__ = [
    "AlertGroup",
    "DeliveryFailed",
    "DeliveryRefused",
    "SlackWebhook",
    "WebhookTransport",
    "escape",
    "render",
]
