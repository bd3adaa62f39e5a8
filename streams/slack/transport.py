"""Posting to an incoming webhook: slack_sdk's WebhookClient with its retry handlers, behind a tiny
interface so the notifier can be tested against any HTTP server that behaves like Slack's."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Slack did not accept the message after the retries; the caller keeps it and tries later."""


class WebhookTransport(Protocol):
    def post(self, payload: Mapping[str, Any]) -> None: ...


class _RedactingFilter(logging.Filter):
    """slack_sdk logs the request URL (the secret) at debug and info; never let it through."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg = message.replace(self._secret, "<webhook-url>")
            record.args = None
        return True


def webhook_url_from_env(environ: Mapping[str, str]) -> str | None:
    """``PL_SLACK_WEBHOOK_URL``, or the first line of the file named by ``PL_SLACK_WEBHOOK_URL_FILE``."""
    path = environ.get("PL_SLACK_WEBHOOK_URL_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return environ.get("PL_SLACK_WEBHOOK_URL") or None


class SlackWebhook:
    """One incoming webhook: retries 429 (honouring Retry-After), 5xx and connection errors, and sends
    at most one message per ``min_interval_s`` (Slack allows about one a second per webhook)."""

    def __init__(
        self,
        url: str,
        *,
        min_interval_s: float = 1.0,
        max_retries: int = 5,
        timeout_s: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        sdk_logger = logging.getLogger("streams.slack.sdk")
        sdk_logger.addFilter(_RedactingFilter(url))
        self._client = WebhookClient(
            url,
            timeout=timeout_s,
            logger=sdk_logger,
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=max_retries),
                ServerErrorRetryHandler(max_retry_count=max_retries),
                ConnectionErrorRetryHandler(max_retry_count=max_retries),
            ],
        )
        self._min_interval_s = min_interval_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_post: float | None = None

    def __repr__(self) -> str:  # never the URL
        return "SlackWebhook(<webhook-url>)"

    def post(self, payload: Mapping[str, Any]) -> None:
        if self._last_post is not None:
            wait = self._min_interval_s - (self._monotonic() - self._last_post)
            if wait > 0:
                self._sleep(wait)
        try:
            response = self._client.send_dict(dict(payload))
        except Exception as error:  # connection refused after retries, timeouts
            raise DeliveryFailed(type(error).__name__) from None
        finally:
            self._last_post = self._monotonic()
        if response.status_code != 200:
            raise DeliveryFailed(f"HTTP {response.status_code}")
