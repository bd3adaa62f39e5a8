"""docker-compose.yml describes the same stack as deploy/local/stack: same topics, partitions, ports,
broker settings, ClickHouse account and PL_* variable names; and both agree with streams.settings."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from streams.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

# Different from every default, to prove compose reads the same variable names as the local stack.
CUSTOM_ENVIRONMENT = {
    "PL_KAFKA_PORT": "19192",
    "PL_KAFKA_CONTROLLER_PORT": "19193",
    "PL_CLICKHOUSE_PORT": "19000",
    "PL_CLICKHOUSE_HTTP_PORT": "18123",
    "PL_CLICKHOUSE_USER": "pipeline",
    "PL_CLICKHOUSE_PASSWORD": "s3cret",
    "PL_CLICKHOUSE_DATABASE": "ledger_test",
    "PL_PARTITIONS": "12",
}
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Compose's `${NAME:-default}` substitution (and `$$` escape), applied to every string in the tree."""
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return environ.get(match["name"]) or match["default"] or ""

    return VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module", params=["defaults", "custom environment"])
def environ(request: pytest.FixtureRequest) -> dict[str, str]:
    return {} if request.param == "defaults" else CUSTOM_ENVIRONMENT


@pytest.fixture
def compose(raw_compose: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    return interpolate(raw_compose, environ)


@pytest.fixture
def expected(stack_module: ModuleType, environ: dict[str, str]) -> Any:
    return stack_module.load_settings({**environ, "PL_STATE_DIR": "/nonexistent"})


def service_environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    return {name: str(value) for name, value in compose["services"][service]["environment"].items()}


def test_compose_has_the_stack_services(raw_compose: dict[str, Any]) -> None:
    assert set(raw_compose["services"]) == {"kafka", "clickhouse", "topic-init", "worker"}


def test_images_are_pinned_to_the_local_kafka_version(raw_compose: dict[str, Any], stack_module) -> None:
    services = raw_compose["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{stack_module.KAFKA_VERSION}"
    assert services["topic-init"]["image"] == services["kafka"]["image"]
    repository, _, tag = services["clickhouse"]["image"].partition(":")
    assert repository == "clickhouse/clickhouse-server"
    assert re.fullmatch(r"\d+\.\d+(\.\d+)*", tag), "ClickHouse image must be pinned to a version"


def test_kafka_cluster_id_is_a_valid_kafka_uuid(raw_compose: dict[str, Any]) -> None:
    cluster_id = raw_compose["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_published_ports_match_and_stay_on_loopback(compose: dict[str, Any], expected) -> None:
    services = compose["services"]
    assert services["kafka"]["ports"] == [f"127.0.0.1:{expected.kafka_port}:9092"]
    assert services["clickhouse"]["ports"] == [
        f"127.0.0.1:{expected.clickhouse_port}:9000",
        f"127.0.0.1:{expected.clickhouse_http_port}:8123",
    ]


def test_kafka_advertises_the_local_bootstrap_address(compose: dict[str, Any], expected) -> None:
    advertised = service_environment(compose, "kafka")["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert f"PLAINTEXT://{expected.kafka_bootstrap}" in advertised


def test_kafka_controller_port_matches_the_local_default(raw_compose: dict[str, Any], stack_module) -> None:
    listeners = raw_compose["services"]["kafka"]["environment"]["KAFKA_LISTENERS"]
    assert f"CONTROLLER://0.0.0.0:{stack_module.DEFAULTS['PL_KAFKA_CONTROLLER_PORT']}" in listeners.split(",")


def test_kafka_broker_settings_match_the_local_broker(
    compose: dict[str, Any], expected, stack_module
) -> None:
    environment = service_environment(compose, "kafka")
    wanted = {**stack_module.KAFKA_BROKER_SETTINGS, "num.partitions": str(expected.topic_partitions)}
    for key, value in wanted.items():
        assert environment.get("KAFKA_" + key.upper().replace(".", "_")) == value, key


def test_topic_init_creates_the_same_topics_and_partitions(compose: dict[str, Any], expected) -> None:
    environment = service_environment(compose, "topic-init")
    topics = environment["PL_TOPICS"].split()
    assert dict.fromkeys(topics, int(environment["PL_PARTITIONS"])) == expected.partitions_by_topic
    assert len(topics) == len(set(topics))


def test_clickhouse_account_matches(compose: dict[str, Any], expected) -> None:
    environment = service_environment(compose, "clickhouse")
    assert (
        environment["CLICKHOUSE_USER"],
        environment["CLICKHOUSE_PASSWORD"],
        environment["CLICKHOUSE_DB"],
    ) == (
        expected.clickhouse_user,
        expected.clickhouse_password,
        expected.clickhouse_database,
    )


def test_worker_gets_the_same_connection_variables(compose: dict[str, Any], expected) -> None:
    environment = service_environment(compose, "worker")
    local = expected.exports()
    # Inside the compose network the worker reaches the services by name, not on the host's loopback.
    assert environment["PL_KAFKA_BOOTSTRAP"] == "kafka:29092"
    assert environment["PL_CLICKHOUSE_HOST"] == "clickhouse"
    assert environment["PL_CLICKHOUSE_PORT"] == "9000"
    for name in ("PL_CLICKHOUSE_USER", "PL_CLICKHOUSE_PASSWORD", "PL_CLICKHOUSE_DATABASE", "PL_PARTITIONS"):
        assert environment[name] == local[name], name


def test_worker_image_runs_the_worker(raw_compose: dict[str, Any]) -> None:
    worker = raw_compose["services"]["worker"]
    dockerfile = REPO_ROOT / worker["build"]["context"] / worker["build"]["dockerfile"]
    instructions = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", instructions, re.MULTILINE)
    assert re.search(r"^RUN pip install ", instructions, re.MULTILINE)
    assert worker["command"] == ["promise-ledger", "worker"]


def test_local_stack_exports_are_what_the_pipeline_reads(
    stack_module: ModuleType, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`eval "$(deploy/local/stack env)"` points streams.settings at the stack, and so do the defaults."""
    exports = stack_module.load_settings({**environ, "PL_STATE_DIR": "/nonexistent"}).exports()
    for name in [
        *CUSTOM_ENVIRONMENT,
        "PL_KAFKA_BOOTSTRAP",
        "PL_CLICKHOUSE_HOST",
        "PL_CLICKHOUSE_PASSWORD_FILE",
    ]:
        monkeypatch.delenv(name, raising=False)
    if environ:
        for name, value in exports.items():
            monkeypatch.setenv(name, value)
    pipeline = Settings.from_env()
    assert (pipeline.kafka_bootstrap, str(pipeline.partitions)) == (
        exports["PL_KAFKA_BOOTSTRAP"],
        exports["PL_PARTITIONS"],
    )
    assert (
        pipeline.clickhouse.host,
        str(pipeline.clickhouse.port),
        pipeline.clickhouse.user,
        pipeline.clickhouse.password,
        pipeline.clickhouse.database,
    ) == (
        exports["PL_CLICKHOUSE_HOST"],
        exports["PL_CLICKHOUSE_PORT"],
        exports["PL_CLICKHOUSE_USER"],
        exports["PL_CLICKHOUSE_PASSWORD"],
        exports["PL_CLICKHOUSE_DATABASE"],
    )
