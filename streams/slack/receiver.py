"""A local HTTP endpoint that behaves like a Slack incoming webhook, for tests and the quickstart.

It answers 200 ``ok`` by default; a script of responses (e.g. 429 with Retry-After, 500) can be queued
to exercise retries. Every accepted message is kept, and can be shown the way Slack would show it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_BODIES = {200: b"ok", 404: b"no_service", 429: b"rate_limited"}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    retry_after_s: int | None = None


@dataclass(slots=True)
class Delivery:
    received_at: float
    payload: dict[str, Any]


@dataclass
class SlackLikeReceiver:
    """``with SlackLikeReceiver() as slack: ... slack.url ... slack.messages``"""

    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/services/T000/B000/local-secret"
    replies: Iterable[Reply] = ()
    attempts: list[tuple[float, int]] = field(default_factory=list)  # (time, status answered)
    messages: list[Delivery] = field(default_factory=list)
    on_message: Any = None

    def __post_init__(self) -> None:
        self._queued: deque[Reply] = deque(self.replies)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply = receiver._next_reply(self.path)
                receiver.attempts.append((time.monotonic(), reply.status))
                if reply.status == 200:
                    delivery = Delivery(time.monotonic(), json.loads(body))
                    receiver.messages.append(delivery)
                    if receiver.on_message:
                        receiver.on_message(delivery.payload)
                text = _BODIES.get(reply.status, b"server_error")
                self.send_response(reply.status)
                if reply.retry_after_s is not None:
                    self.send_header("Retry-After", str(reply.retry_after_s))
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output and logs quiet
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _next_reply(self, path: str) -> Reply:
        if path != self.path:
            return Reply(404)
        with self._lock:
            return self._queued.popleft() if self._queued else Reply(200)

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, then 200 again."""
        with self._lock:
            self._queued.extend(replies)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def __enter__(self) -> SlackLikeReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def as_slack_shows_it(payload: dict[str, Any]) -> str:
    """Message text roughly as a Slack client renders it: mrkdwn entities decoded, blocks flattened."""
    lines: list[str] = []
    for block in payload.get("blocks", []):
        texts = [block["text"]["text"]] if "text" in block else []
        texts += [item["text"] for item in block.get("fields", []) + block.get("elements", [])]
        lines.append("  ".join(text.replace("\n", ": ") for text in texts))
    shown = "\n".join(lines) or payload.get("text", "")
    return shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
