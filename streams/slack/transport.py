"""Posting to an incoming webhook: slack_sdk's WebhookClient with its retry handlers, behind a tiny
interface so the notifier can be tested against any HTTP server that behaves like Slack's.

What Slack's answer means for the message (SPEC §6):
- 2xx: delivered.
- 429, 408, 5xx, timeouts, connection errors: transient. Retried here a few times (slack_sdk's backoff
  with jitter; a short Retry-After is slept), then ``DeliveryFailed`` (with the Retry-After, if any)
  and the caller tries again later: the message is not lost.
- Any other 4xx (400 ``invalid_blocks``, 403, 404 ``no_service``, 410 ...): permanent, the same message
  would be refused again. ``DeliveryRefused`` carries Slack's status and (short) body.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

_BODY_KEPT = 200  # characters of Slack's answer kept in a refusal: its error code, not a page of HTML


class DeliveryFailed(Exception):
    """Slack did not take the message this time (transient); the caller keeps it and tries later."""

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class DeliveryRefused(Exception):
    """Slack refused the message for good (a 4xx other than 408 and 429): sending it again is futile."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class WebhookTransport(Protocol):
    def post(self, payload: Mapping[str, Any]) -> None:
        """Deliver, or raise ``DeliveryFailed`` (try later) or ``DeliveryRefused`` (never again)."""
        ...


def _is_transient(status: int) -> bool:
    return status in (408, 429) or not 400 <= status < 500


def _secret_forms(url: str) -> list[str]:
    """Every spelling of the URL that can reach a log line: as configured, as urllib sends and logs it
    (``Request.full_url`` strips whitespace), and its path, which alone is the secret."""
    sent = urllib.request.Request(url.strip()).full_url
    path = urllib.parse.urlsplit(sent).path
    forms = {url, url.strip(), sent}
    if len(path) > 1:
        forms.add(path)
    return sorted((form for form in forms if form), key=len, reverse=True)


def _redact(text: str, forms: list[str]) -> str:
    for form in forms:
        text = text.replace(form, "<webhook-url>")
    return text


class _RedactingFilter(logging.Filter):
    """slack_sdk logs the request URL (the secret) at debug and info; never let it through."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._forms = _secret_forms(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _redact(message, self._forms)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def webhook_url_from_env(environ: Mapping[str, str]) -> str | None:
    """``PL_SLACK_WEBHOOK_URL``, or the first line of the file named by ``PL_SLACK_WEBHOOK_URL_FILE``;
    surrounding whitespace (a newline from ``echo``) is not part of it."""
    path = environ.get("PL_SLACK_WEBHOOK_URL_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return environ.get("PL_SLACK_WEBHOOK_URL", "").strip() or None


def _retry_after_s(headers: Mapping[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):  # an HTTP date: not worth parsing, the caller backs off anyway
                return None
    return None


class _ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Sleeps a Retry-After inside the call only when it is short: a long one is the caller's to wait,
    while it keeps polling Kafka (a consumer silent for minutes loses its partitions)."""

    def __init__(self, max_retry_count: int, max_wait_s: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._max_wait_s = max_wait_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        wait = _retry_after_s(response.headers)
        return wait is not None and wait <= self._max_wait_s


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
        max_retry_after_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        sdk_logger = logging.getLogger("streams.slack.sdk")
        sdk_logger.addFilter(_RedactingFilter(url))
        self._secret_forms = _secret_forms(url)
        self._client = WebhookClient(
            url.strip(),
            timeout=timeout_s,
            logger=sdk_logger,
            retry_handlers=[
                _ShortRateLimitRetryHandler(max_retries, max_retry_after_s),
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
        status = response.status_code
        if 200 <= status < 300:
            return
        if _is_transient(status):
            raise DeliveryFailed(f"HTTP {status}", retry_after_s=_retry_after_s(response.headers or {}))
        # A proxy's error page may quote the URL; the body ends up in logs and dead letters.
        body = _redact(response.body or "", self._secret_forms)
        raise DeliveryRefused(status, body.strip()[:_BODY_KEPT])
