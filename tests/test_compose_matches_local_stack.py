"""docker-compose.yml describes the same stack as deploy/local/stack: same topics, partitions, ports,
broker settings, ClickHouse account and PL_* variable names; and both agree with streams.settings. The
pipeline services run `promise-ledger` subcommands with flags the CLI has, Prometheus scrapes the ports
they serve /metrics on, and Grafana gets its provisioning and dashboards."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import yaml

from streams.cli.main import cli
from streams.codec.schemas import SCHEMAS_DIR_ENV
from streams.settings import METRICS_HOST_ENV, Settings

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
    "PL_CLICKHOUSE_ADMIN_USER": "owner",
    "PL_CLICKHOUSE_ADMIN_PASSWORD": "0wner-s3cret",
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


PIPELINE_SERVICES = ("worker", "sink", "notifier", "simulate")


def test_compose_has_the_stack_services(raw_compose: dict[str, Any]) -> None:
    assert set(raw_compose["services"]) == {
        "kafka",
        "clickhouse",
        "topic-init",
        *PIPELINE_SERVICES,
        "prometheus",
        "grafana",
    }


def test_optional_services_sit_behind_profiles(raw_compose: dict[str, Any]) -> None:
    services = raw_compose["services"]
    assert services["simulate"]["profiles"] == ["simulate"]
    assert services["notifier"]["profiles"] == ["slack"]  # it cannot run without a webhook
    always = {name for name, service in services.items() if "profiles" not in service}
    assert {"kafka", "clickhouse", "worker", "sink", "prometheus", "grafana"} <= always


def test_images_are_pinned_to_the_local_kafka_version(raw_compose: dict[str, Any], stack_module) -> None:
    services = raw_compose["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{stack_module.KAFKA_VERSION}"
    assert services["topic-init"]["image"] == services["kafka"]["image"]
    repository, _, tag = services["clickhouse"]["image"].partition(":")
    assert repository == "clickhouse/clickhouse-server"
    assert re.fullmatch(r"\d+\.\d+(\.\d+)*", tag), "ClickHouse image must be pinned to a version"
    for service, repository in (("prometheus", "prom/prometheus"), ("grafana", "grafana/grafana")):
        name, _, tag = services[service]["image"].partition(":")
        assert name == repository
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{service} image must be pinned to a release"


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


def test_clickhouse_accounts_match(compose: dict[str, Any], raw_compose: dict[str, Any], expected) -> None:
    environment = service_environment(compose, "clickhouse")
    assert (
        environment["CLICKHOUSE_USER"],
        environment["CLICKHOUSE_PASSWORD"],
        environment["CLICKHOUSE_DB"],
        environment["PL_CLICKHOUSE_USER"],
        environment["PL_CLICKHOUSE_PASSWORD"],
    ) == (
        expected.clickhouse_admin_user,
        expected.clickhouse_admin_password,
        expected.clickhouse_database,
        expected.clickhouse_user,
        expected.clickhouse_password,
    )
    # The pipeline's account is made by an init script that grants it reading and inserting only.
    init = "./deploy/clickhouse/pipeline-user.sh:/docker-entrypoint-initdb.d/pipeline-user.sh:ro"
    assert init in raw_compose["services"]["clickhouse"]["volumes"]
    script = (REPO_ROOT / "deploy" / "clickhouse" / "pipeline-user.sh").read_text()
    assert re.findall(r"^GRANT (.+) ON", script, re.MULTILINE) == ["SELECT, INSERT"]


def test_only_the_sink_gets_the_admin_account(compose: dict[str, Any], expected) -> None:
    sink = service_environment(compose, "sink")
    assert (sink["PL_CLICKHOUSE_ADMIN_USER"], sink["PL_CLICKHOUSE_ADMIN_PASSWORD"]) == (
        expected.clickhouse_admin_user,
        expected.clickhouse_admin_password,
    )
    for service in set(PIPELINE_SERVICES) - {"sink"}:
        assert "PL_CLICKHOUSE_ADMIN_PASSWORD" not in service_environment(compose, service), service


@pytest.mark.parametrize("service", PIPELINE_SERVICES)
def test_pipeline_services_get_the_same_connection_variables(
    compose: dict[str, Any], expected, service: str
) -> None:
    environment = service_environment(compose, service)
    local = expected.exports()
    # Inside the compose network the services are reached by name, not on the host's loopback.
    assert environment["PL_KAFKA_BOOTSTRAP"] == "kafka:29092"
    assert environment["PL_CLICKHOUSE_HOST"] == "clickhouse"
    assert environment["PL_CLICKHOUSE_PORT"] == "9000"
    for name in ("PL_CLICKHOUSE_USER", "PL_CLICKHOUSE_PASSWORD", "PL_CLICKHOUSE_DATABASE", "PL_PARTITIONS"):
        assert environment[name] == local[name], name
    # /metrics must answer Prometheus on the compose network, not only the container's loopback.
    assert environment[METRICS_HOST_ENV] == "0.0.0.0"


def test_pipeline_images_install_the_package_with_its_schemas(raw_compose: dict[str, Any]) -> None:
    builds = {str(raw_compose["services"][service]["build"]) for service in PIPELINE_SERVICES}
    assert len(builds) == 1
    build = raw_compose["services"]["worker"]["build"]
    dockerfile = REPO_ROOT / build["context"] / build["dockerfile"]
    instructions = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", instructions, re.MULTILINE)
    assert re.search(r"^RUN pip install /app$", instructions, re.MULTILINE)
    assert re.search(r"^COPY .*\. /app$", instructions, re.MULTILINE)
    # pip installs streams/ into site-packages, away from the checkout: the codec must be told where
    # the .avsc files were copied.
    schemas_dir = re.search(rf"\b{SCHEMAS_DIR_ENV}=(\S+)", instructions)
    assert schemas_dir and schemas_dir[1] == "/app/schemas"
    assert (REPO_ROOT / "schemas").is_dir()


def _cli_command(arguments: list[str]) -> click.Command:
    assert arguments[0] == "promise-ledger"
    command = cli.commands.get(arguments[1])
    assert command is not None, f"promise-ledger has no subcommand {arguments[1]}"
    return command


def _option_value(arguments: list[str], flag: str) -> str:
    return arguments[arguments.index(flag) + 1]


@pytest.mark.parametrize(
    "service",
    [
        "worker",
        "sink",
        "notifier",
        "simulate",
    ],
)
def test_service_commands_use_flags_the_cli_has(raw_compose: dict[str, Any], service: str) -> None:
    arguments = raw_compose["services"][service]["command"]
    command = _cli_command(arguments)
    known = {flag for parameter in command.params for flag in parameter.opts}
    for flag in (argument for argument in arguments[2:] if argument.startswith("-")):
        assert flag in known, f"{service}: promise-ledger {arguments[1]} has no {flag}"
    # The command line must also parse: values have the types the options expect.
    context = command.make_context(
        f"promise-ledger {arguments[1]}", list(arguments[2:]), resilient_parsing=False
    )
    assert context.params


def test_the_worker_scales(raw_compose: dict[str, Any]) -> None:
    """`--scale worker=N` needs no fixed container name and no published host port."""
    worker = raw_compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert _cli_command(worker["command"]).name == "worker"


def test_prometheus_scrapes_every_metrics_port(raw_compose: dict[str, Any]) -> None:
    services = raw_compose["services"]
    prometheus = services["prometheus"]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    config_path = REPO_ROOT / mounted["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(config_path.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # Every worker replica answers to the DNS name `worker`; DNS discovery scrapes them all.
    (worker_discovery,) = jobs["worker"]["dns_sd_configs"]
    assert worker_discovery["names"] == ["worker"]
    assert worker_discovery["port"] == int(services["worker"]["environment"]["PL_WORKER_WEB_PORT"])
    for service, job in (("sink", "sink"), ("notifier", "notifier")):
        port = _option_value(services[service]["command"], "--metrics-port")
        assert jobs[job]["static_configs"] == [{"targets": [f"{service}:{port}"]}]


def test_notifier_reads_the_webhook_from_a_secret(raw_compose: dict[str, Any]) -> None:
    notifier = raw_compose["services"]["notifier"]
    (secret,) = notifier["secrets"]
    assert notifier["environment"]["PL_SLACK_WEBHOOK_URL_FILE"] == f"/run/secrets/{secret}"
    assert "PL_SLACK_WEBHOOK_URL" not in notifier["environment"]  # no URL in `docker inspect`
    assert raw_compose["secrets"][secret] == {"environment": "PL_SLACK_WEBHOOK_URL"}


def test_grafana_is_provisioned_from_the_repository(compose: dict[str, Any], expected) -> None:
    grafana = compose["services"]["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"].split(",")
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    provisioning = REPO_ROOT / mounted["/etc/grafana/provisioning"]
    assert (provisioning / "datasources" / "datasources.yml").is_file()
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"]
    (dashboards_in_container,) = [provider["options"]["path"] for provider in providers]
    dashboards = REPO_ROOT / mounted[dashboards_in_container]
    assert sorted(path.name for path in dashboards.glob("*.json"))
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_in_container + "/")
    assert (dashboards / Path(home).name).is_file()
    # The data source file reads the ledger account from Grafana's environment.
    environment = grafana["environment"]
    assert (
        environment["PL_CLICKHOUSE_USER"],
        environment["PL_CLICKHOUSE_PASSWORD"],
        environment["PL_CLICKHOUSE_DATABASE"],
    ) == (expected.clickhouse_user, expected.clickhouse_password, expected.clickhouse_database)


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
