"""/metrics listens on loopback unless PL_METRICS_HOST says otherwise (containers set 0.0.0.0 so that
Prometheus can scrape them across the compose network)."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from streams.cli.service import serve_metrics
from streams.settings import METRICS_HOST_ENV, worker_settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_metrics_stay_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(METRICS_HOST_ENV, raising=False)
    assert worker_settings().web_host == "127.0.0.1"
    port = _free_port()
    serve_metrics(port)
    assert _answers("127.0.0.1", port)


def test_metrics_listen_where_pl_metrics_host_says(monkeypatch: pytest.MonkeyPatch) -> None:
    # 127.0.0.2 is another loopback address: bound there, the server must not answer on 127.0.0.1.
    monkeypatch.setenv(METRICS_HOST_ENV, "127.0.0.2")
    assert worker_settings().web_host == "127.0.0.2"
    port = _free_port()
    serve_metrics(port)
    assert _answers("127.0.0.2", port)
    assert not _answers("127.0.0.1", port)
