"""A local HTTP endpoint that behaves like a Slack incoming webhook, for tests and the quickstart.

It answers 200 ``ok`` by default; a script of responses (e.g. 429 with Retry-After, 500) can be queued
to exercise retries, and ``refuse`` picks messages to refuse for good (e.g. 400 ``invalid_blocks``,
as Slack answers a payload over its limits: see ``block_kit_problems``). Every accepted message is kept,
and can be shown the way Slack would show it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_BODIES = {
    200: b"ok",
    400: b"invalid_blocks",
    403: b"action_prohibited",
    404: b"no_service",
    410: b"channel_is_archived",
    429: b"rate_limited",
}


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
    refused: list[dict[str, Any]] = field(default_factory=list)  # payloads answered by ``refuse``
    on_message: Any = None
    # A payload -> a reply that refuses it (every time it is sent), or None to answer as scripted.
    refuse: Callable[[dict[str, Any]], Reply | None] | None = None

    def __post_init__(self) -> None:
        self._queued: deque[Reply] = deque(self.replies)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(body)
                refusal = receiver.refuse(payload) if receiver.refuse and self.path == receiver.path else None
                if refusal is not None:
                    receiver.refused.append(payload)
                reply = refusal or receiver._next_reply(self.path)
                receiver.attempts.append((time.monotonic(), reply.status))
                if reply.status == 200:
                    delivery = Delivery(time.monotonic(), payload)
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


def _text_objects(payload: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(where, text object, its limit) for every text object in the blocks."""
    for n, block in enumerate(payload.get("blocks", [])):
        if "text" in block:
            yield f"block {n} text", block["text"], 3000
        for item in block.get("fields", []):
            yield f"block {n} field", item, 2000
        for item in block.get("elements", []):
            yield f"block {n} element", item, 3000


def block_kit_problems(payload: dict[str, Any]) -> list[str]:
    """What Slack would refuse in this payload (the limits SPEC §6 names); empty when it is valid."""
    problems: list[str] = []
    try:
        json.dumps(payload, allow_nan=False)
    except ValueError as error:
        problems.append(f"not JSON: {error}")
    text = payload.get("text")
    if not isinstance(text, str) or not text or len(text) > 3000:
        problems.append("top-level text missing, empty or over 3000")
    blocks = payload.get("blocks", [])
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks (at most 50)")
    for n, block in enumerate(blocks):
        if block.get("type") not in ("section", "context"):
            problems.append(f"block {n}: type {block.get('type')!r}")
        if block.get("type") == "section" and not ("text" in block or block.get("fields")):
            problems.append(f"block {n}: a section needs text or fields")
        if len(block.get("fields", [])) > 10:
            problems.append(f"block {n}: more than 10 fields")
    for where, item, limit in _text_objects(payload):
        if item.get("type") not in ("mrkdwn", "plain_text") or not isinstance(item.get("text"), str):
            problems.append(f"{where}: not a text object")
        elif not 0 < len(item["text"]) <= limit:
            problems.append(f"{where}: {len(item['text'])} characters (1 to {limit})")
    return problems


def as_slack_shows_it(payload: dict[str, Any]) -> str:
    """Message text roughly as a Slack client renders it: mrkdwn entities decoded, blocks flattened."""
    lines: list[str] = []
    for block in payload.get("blocks", []):
        texts = [block["text"]["text"]] if "text" in block else []
        texts += [item["text"] for item in block.get("fields", []) + block.get("elements", [])]
        lines.append("  ".join(text.replace("\n", ": ") for text in texts))
    shown = "\n".join(lines) or payload.get("text", "")
    return shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
