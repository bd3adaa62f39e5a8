"""Where the pipeline's services are, read from the environment (``PL_*``), with local-stack defaults.

The same variable names are used by ``deploy/local/stack``, ``docker-compose.yml`` and every command,
so one ``eval "$(deploy/local/stack env)"`` points everything at one stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

INPUT_TOPICS: tuple[str, ...] = ("marketing.events", "sales.events", "fulfilment.events", "service.events")
ALIGNMENT_TOPIC = "alignment.events"
ALERTS_TOPIC = "alignment.alerts"
DEAD_LETTER_TOPIC = "alignment.dlq"
# compacted: which dead letters `promise-ledger dlq redrive` already sent back (docs/operations.md)
REDRIVEN_TOPIC = "alignment.dlq-redriven"
# Co-partitioned with the input topics: the worker's timer drops a tick into every partition so an idle
# partition's clock still follows wall time (SPEC §5).
TICKS_TOPIC = "promise-ledger.ticks"

APP_ID = "promise-ledger"  # the worker's Faust app id, also its consumer group
STATE_TABLE = "ledger-state"
STATE_CHANGELOG_TOPIC = f"{APP_ID}-{STATE_TABLE}-changelog"  # Faust's naming
SINK_GROUP = "promise-ledger-sink"
NOTIFIER_GROUP = "promise-ledger-notifier"
SLACK_SENT_TOPIC = "alignment.slack-sent"  # compacted: dedup keys already delivered to Slack


# Where /metrics listens. Loopback by default, so a laptop never exposes it; containers set 0.0.0.0 so
# Prometheus on the compose network can scrape them.
METRICS_HOST_ENV = "PL_METRICS_HOST"


def metrics_host() -> str:
    return os.environ.get(METRICS_HOST_ENV) or "127.0.0.1"


def _secret_from_env(name: str, default: str) -> str:
    """A secret comes from ``NAME`` or from the file named by ``NAME_FILE`` (Docker/K8s secrets).

    Surrounding whitespace (a newline from ``echo`` or a heredoc) is never part of it, in either form:
    what is sent must be exactly what a log redaction looks for."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default).strip()


@dataclass(frozen=True, slots=True)
class ClickHouseSettings:
    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "ledger"
    password: str = field(default="", repr=False)
    database: str = "promise_ledger"
    # The account that owns the schema (CREATE/ALTER); the pipeline's own account may only insert and read.
    # Unset: the pipeline's account applies the schema itself.
    admin_user: str | None = None
    admin_password: str = field(default="", repr=False)

    def schema_owner(self) -> tuple[str, str]:
        """(user, password) of the account that applies the schema."""
        if self.admin_user:
            return self.admin_user, self.admin_password
        return self.user, self.password


@dataclass(frozen=True, slots=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    partitions: int = 6
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            kafka_bootstrap=env("PL_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            partitions=int(env("PL_PARTITIONS", "6")),
            clickhouse=ClickHouseSettings(
                host=env("PL_CLICKHOUSE_HOST", "127.0.0.1"),
                port=int(env("PL_CLICKHOUSE_PORT", "9000")),
                user=env("PL_CLICKHOUSE_USER", "ledger"),
                password=_secret_from_env("PL_CLICKHOUSE_PASSWORD", "ledger-dev-password"),
                database=env("PL_CLICKHOUSE_DATABASE", "promise_ledger"),
                admin_user=env("PL_CLICKHOUSE_ADMIN_USER") or None,
                admin_password=_secret_from_env("PL_CLICKHOUSE_ADMIN_PASSWORD", ""),
            ),
        )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    batch_size: int = 2000
    batch_wait_s: float = 0.2
    #: the idle clock moves only after the partition received nothing for this long (progress.py)
    idle_after_s: float = 2.0
    #: a producer's record is in the log within this long of its timestamp (progress.py)
    delivery_bound_s: float = 1.0
    #: how far ahead of wall time an occurred_at may be (SPEC §5); None: the engine's grace period
    max_skew_s: float | None = None
    session_timeout_s: float = 10.0
    data_dir: str = str(Path.home() / ".cache" / "promise-ledger" / "worker")
    engine_config_path: str | None = None

    @property
    def engine_config(self) -> object:
        from streams.engine import EngineConfig, load_config

        return load_config(self.engine_config_path) if self.engine_config_path else EngineConfig()


def worker_settings() -> WorkerSettings:
    env = os.environ.get
    return WorkerSettings(
        web_host=metrics_host(),
        web_port=int(env("PL_WORKER_WEB_PORT", "6066")),
        batch_size=int(env("PL_WORKER_BATCH_SIZE", "2000")),
        batch_wait_s=float(env("PL_WORKER_BATCH_WAIT_S", "0.2")),
        idle_after_s=float(env("PL_IDLE_AFTER_S", "2.0")),
        delivery_bound_s=float(env("PL_DELIVERY_BOUND_S", "1.0")),
        max_skew_s=float(env("PL_MAX_SKEW_S")) if env("PL_MAX_SKEW_S") else None,
        session_timeout_s=float(env("PL_SESSION_TIMEOUT_S", "10")),
        # Faust keeps a small data directory (tables' offsets); never the current directory.
        data_dir=env("PL_WORKER_DATA_DIR")
        or str(Path(env("PL_STATE_DIR", str(Path.home() / ".cache" / "promise-ledger"))) / "worker"),
        engine_config_path=env("PL_ENGINE_CONFIG") or None,
    )
