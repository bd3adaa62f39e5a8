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


def _secret_from_env(name: str, default: str) -> str:
    """A secret comes from ``NAME`` or from the file named by ``NAME_FILE`` (Docker/K8s secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default)


@dataclass(frozen=True, slots=True)
class ClickHouseSettings:
    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "ledger"
    password: str = field(default="", repr=False)
    database: str = "promise_ledger"


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
            ),
        )
