"""Shared fixtures. `stack` brings the local Kafka + ClickHouse up (idempotent) for tests marked `stack`."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.clickhouse_engines import ServerEngine, admin_client

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_SCRIPT = REPO_ROOT / "deploy" / "local" / "stack.py"


def load_stack_module() -> ModuleType:
    """deploy/local/stack.py is a script, not a package module; it is the source of truth for the stack."""
    spec = importlib.util.spec_from_file_location("promise_ledger_local_stack", STACK_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def stack_module() -> ModuleType:
    return load_stack_module()


@pytest.fixture(scope="session")
def stack(stack_module: ModuleType) -> Iterator[object]:
    """Connection settings of a running local stack (a `StackSettings`: kafka_bootstrap, clickhouse_port,
    clickhouse_user, clickhouse_password, clickhouse_database, partitions_by_topic, …); host is 127.0.0.1."""
    settings = stack_module.load_settings(os.environ)
    started = subprocess.run(
        [sys.executable, str(STACK_SCRIPT), "up"], capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        pytest.fail(f"deploy/local/stack up failed:\n{started.stdout}{started.stderr}", pytrace=False)
    yield settings


@pytest.fixture
def clickhouse_scratch(stack) -> Iterator[ServerEngine]:
    """The stack's ClickHouse server, as the admin account (tests apply the schema through it), in a
    fresh database dropped afterwards."""
    database = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = admin_client(stack)
    admin.execute(f"CREATE DATABASE {database}")
    client = admin_client(stack, database)
    try:
        yield ServerEngine(client)
    finally:
        client.disconnect()
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.disconnect()


@pytest.fixture
def pipeline(stack, stack_module: ModuleType, tmp_path: Path) -> Iterator[object]:
    """Empty pipeline topics on the local stack, and whatever processes the test starts, stopped after."""
    from tests.live_pipeline import Pipeline

    live = Pipeline(stack, stack_module, tmp_path)
    live.reset()
    try:
        yield live
    finally:
        live.stop_all()


@pytest.fixture
def scratch_database(stack) -> Iterator[str]:
    """The name of a fresh, empty database on the stack's ClickHouse, dropped afterwards."""
    database = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = admin_client(stack)
    admin.execute(f"CREATE DATABASE {database}")
    try:
        yield database
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.disconnect()
