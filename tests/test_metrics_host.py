"""/metrics listens on loopback unless PL_METRICS_HOST says otherwise (containers set 0.0.0.0 so that
Prometheus can scrape them across the compose network)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streams.cli.service import serve_metrics
from streams.settings import METRICS_HOST_ENV, worker_settings

REPO_ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.stack
def test_the_worker_serves_prometheus_text_where_pl_metrics_host_says(stack, tmp_path) -> None:
    """What Prometheus scrapes in docker-compose.yml: the worker's /metrics, on that address only."""
    port = _free_port()
    environment = {
        **os.environ,
        **stack.exports(),
        METRICS_HOST_ENV: "127.0.0.2",
        "PYTHONPATH": str(REPO_ROOT),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli.main", "worker", "--web-port", str(port)],
        cwd=tmp_path,  # Faust keeps its data directory in the working directory
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not _answers("127.0.0.2", port):
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "no /metrics on 127.0.0.2"
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics", timeout=5) as response:
            content_type = response.headers["Content-Type"]
            body = response.read().decode()
        assert content_type.startswith("text/plain; version=")
        assert "# TYPE ledger_consumer_lag gauge" in body
        assert not _answers("127.0.0.1", port)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
