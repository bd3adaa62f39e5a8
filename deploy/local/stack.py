"""The local Promise Ledger stack without Docker: a KRaft Kafka broker fetched from Maven Central and
Debian's ClickHouse server, each run with our own config under a state directory outside the git tree.

    deploy/local/stack up | down | status | env

Topic names come from streams/settings.py (what the pipeline reads); everything a stack serves (ports,
partition count, the ClickHouse account, broker settings) is defined here, once: docker-compose.yml is
checked against this module by tests/test_compose_matches_local_stack.py, and tests/conftest.py reads its
settings. Standard library only, except that topic management imports kafka-python when needed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape as xml_escape

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from streams.settings import (  # noqa: E402
    ALERTS_TOPIC,
    ALIGNMENT_TOPIC,
    APP_ID,
    DEAD_LETTER_TOPIC,
    INPUT_TOPICS,
    NOTIFIER_GROUP,
    REDRIVEN_TOPIC,
    SINK_GROUP,
    SLACK_SENT_TOPIC,
    STATE_CHANGELOG_TOPIC,
    TICKS_TOPIC,
)

KAFKA_VERSION = "4.4.0"
HOST = "127.0.0.1"

COPARTITIONED_TOPICS = (*INPUT_TOPICS, TICKS_TOPIC)
OUTPUT_TOPICS = (ALIGNMENT_TOPIC, ALERTS_TOPIC, DEAD_LETTER_TOPIC)
TOPICS = COPARTITIONED_TOPICS + OUTPUT_TOPICS

# Every setting a user can override, with its default. docker-compose.yml uses the same names.
DEFAULTS: Mapping[str, str] = {
    "PL_KAFKA_PORT": "9092",
    "PL_KAFKA_CONTROLLER_PORT": "9093",
    "PL_CLICKHOUSE_PORT": "9000",
    "PL_CLICKHOUSE_HTTP_PORT": "8123",
    "PL_CLICKHOUSE_USER": "ledger",
    "PL_CLICKHOUSE_PASSWORD": "ledger-dev-password",
    "PL_CLICKHOUSE_ADMIN_USER": "ledger_admin",
    "PL_CLICKHOUSE_ADMIN_PASSWORD": "ledger-admin-dev-password",
    "PL_CLICKHOUSE_DATABASE": "promise_ledger",
    "PL_PARTITIONS": "6",
}

# Broker settings shared by the local broker and the compose broker (single node, fast test rebalances).
KAFKA_BROKER_SETTINGS: Mapping[str, str] = {
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "6",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # Topics are created on purpose (by `up` and by Faust's own admin calls), never by a typo.
    "auto.create.topics.enable": "false",
    "log.retention.hours": "168",
    "log.segment.bytes": "104857600",
}

POM = REPO_ROOT / "deploy" / "pom.xml"
KAFKA_HEAP = "-Xmx512m"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 45.0
CLICKHOUSE_SERVER_CANDIDATES = ("/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server")


class StackError(Exception):
    """A failure the user can act on; printed as one line (plus a log tail when a service died)."""


@dataclass(frozen=True)
class StackSettings:
    state_dir: Path
    kafka_port: int
    kafka_controller_port: int
    clickhouse_port: int
    clickhouse_http_port: int
    clickhouse_user: str
    clickhouse_password: str
    clickhouse_admin_user: str
    clickhouse_admin_password: str
    clickhouse_database: str
    topic_partitions: int

    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def partitions_by_topic(self) -> dict[str, int]:
        return dict.fromkeys(TOPICS, self.topic_partitions)

    def exports(self) -> dict[str, str]:
        """The connection settings other scripts and the worker read from the environment."""
        return {
            "PL_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "PL_CLICKHOUSE_HOST": HOST,
            "PL_CLICKHOUSE_PORT": str(self.clickhouse_port),
            "PL_CLICKHOUSE_HTTP_PORT": str(self.clickhouse_http_port),
            "PL_CLICKHOUSE_USER": self.clickhouse_user,
            "PL_CLICKHOUSE_PASSWORD": self.clickhouse_password,
            "PL_CLICKHOUSE_ADMIN_USER": self.clickhouse_admin_user,
            "PL_CLICKHOUSE_ADMIN_PASSWORD": self.clickhouse_admin_password,
            "PL_CLICKHOUSE_DATABASE": self.clickhouse_database,
            "PL_PARTITIONS": str(self.topic_partitions),
        }


def load_settings(environ: Mapping[str, str] = os.environ) -> StackSettings:
    def value(name: str) -> str:
        return environ.get(name) or DEFAULTS[name]

    def number(name: str, low: int, high: int) -> int:
        raw = value(name)
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise StackError(f"{name}={raw!r} must be an integer from {low} to {high}")
        return int(raw)

    def password(name: str) -> str:
        # Like streams.settings: a secret may come from the file named by <NAME>_FILE.
        secret_file = environ.get(f"{name}_FILE")
        if secret_file:
            try:
                return Path(secret_file).read_text(encoding="utf-8").strip()
            except OSError as unreadable:
                raise StackError(f"{name}_FILE: {unreadable}") from unreadable
        return value(name)

    state_dir = Path(environ.get("PL_STATE_DIR") or Path.home() / ".cache" / "promise-ledger")
    database = value("PL_CLICKHOUSE_DATABASE")
    if not database.replace("_", "").isalnum():
        raise StackError(f"PL_CLICKHOUSE_DATABASE={database!r} must be letters, digits and underscores")
    if value("PL_CLICKHOUSE_ADMIN_USER") == value("PL_CLICKHOUSE_USER"):
        raise StackError(
            "PL_CLICKHOUSE_ADMIN_USER must differ from PL_CLICKHOUSE_USER (the pipeline account)"
        )
    return StackSettings(
        state_dir=state_dir.expanduser().resolve(),
        kafka_port=number("PL_KAFKA_PORT", 1, 65535),
        kafka_controller_port=number("PL_KAFKA_CONTROLLER_PORT", 1, 65535),
        clickhouse_port=number("PL_CLICKHOUSE_PORT", 1, 65535),
        clickhouse_http_port=number("PL_CLICKHOUSE_HTTP_PORT", 1, 65535),
        clickhouse_user=value("PL_CLICKHOUSE_USER"),
        clickhouse_password=password("PL_CLICKHOUSE_PASSWORD"),
        clickhouse_admin_user=value("PL_CLICKHOUSE_ADMIN_USER"),
        clickhouse_admin_password=password("PL_CLICKHOUSE_ADMIN_PASSWORD"),
        clickhouse_database=database,
        topic_partitions=number("PL_PARTITIONS", 1, 1000),
    )


def say(message: str) -> None:
    print(message, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {path} ---\n" + "\n".join(text)


def port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


class ManagedProcess:
    """A server we start in its own session and track by pid file; `marker` (a path unique to our state
    directory) must appear on its command line, so a recycled pid after a reboot is never mistaken for it."""

    def __init__(self, name: str, directory: Path, marker: str) -> None:
        self.name = name
        self.directory = directory
        self.marker = marker
        self.pid_file = directory / f"{name}.pid"
        self.console_log = directory / "logs" / f"{name}.out"
        # Set while this invocation started it: right after exec /proc/<pid>/cmdline can still be empty, so
        # liveness of a fresh child is judged by the child handle, not by the marker.
        self._child: subprocess.Popen[bytes] | None = None

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return None
        if self.marker not in command_line.split("\0") or _is_zombie(pid):
            return None
        return pid

    def start(self, command: Sequence[str]) -> int:
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        with self.console_log.open("ab") as console:
            process = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self._child = process
        return process.pid

    def alive(self) -> bool:
        if self._child is not None:
            return self._child.poll() is None
        return self.running_pid() is not None

    def stop(self) -> bool:
        """Stops the process if it is ours and running; returns whether there was one to stop."""
        pid = self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self.running_pid() == pid and time.monotonic() < deadline:
                time.sleep(0.2)
            if self.running_pid() == pid:
                say(f"{self.name}: no exit {STOP_TIMEOUT_S:.0f}s after SIGTERM, sending SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while self.running_pid() == pid:
                    time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def fail(self, why: str, *logs: Path) -> StackError:
        log_tails = (tail(log) for log in (self.console_log, *logs))
        return StackError("\n".join([f"{self.name}: {why}", *log_tails]))


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    temporary.chmod(mode)
    temporary.replace(path)
    return True


def wait_until(ready: Callable[[], bool], process: ManagedProcess, what: str, *logs: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if not process.alive():
            raise process.fail(f"exited while starting ({what})", *logs)
        time.sleep(0.25)
    raise process.fail(f"not ready after {START_TIMEOUT_S:.0f}s ({what})", *logs)


# --- Kafka -----------------------------------------------------------------------------------------


class Kafka:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.libs = self.home / f"libs-{KAFKA_VERSION}"
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.properties = self.home / "server.properties"
        self.log4j_config = self.home / "log4j2.xml"
        self.process = ManagedProcess("kafka", self.home, str(self.properties))

    def server_properties(self) -> str:
        s = self.settings
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{HOST}:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{s.kafka_port},CONTROLLER://{HOST}:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": str(s.topic_partitions),
            **KAFKA_BROKER_SETTINGS,
        }
        header = "# Written by deploy/local/stack.py on every start; edit the script, not this file.\n"
        return header + "".join(f"{key}={value}\n" for key, value in lines.items())

    def log4j2_xml(self) -> str:
        log = xml_escape(str(self.logs / "server.log"))
        pattern = xml_escape(str(self.logs / "server.log.%i"))
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <RollingFile name="server" fileName="{log}" filePattern="{pattern}">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="5"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="server"/></Root>
    <Logger name="org.apache.kafka.clients" level="warn"/>
    <Logger name="kafka.request.logger" level="warn"/>
  </Loggers>
</Configuration>
"""

    def java(self, main_class: str, *arguments: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise StackError("java not found on PATH (Kafka needs Java 17 or newer)")
        return [
            java,
            KAFKA_HEAP,
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_config}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp",
            f"{self.libs}/*",
            main_class,
            *arguments,
        ]

    def fetch_libs(self) -> None:
        pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        complete = self.libs / ".complete"
        if complete.exists() and complete.read_text().strip() == pom_digest:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("mvn not found on PATH (needed once to fetch Kafka from Maven Central)")
        say(f"kafka: fetching Kafka {KAFKA_VERSION} and its run-time dependencies from Maven Central")
        staging = self.home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        fetched = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
        )
        if fetched.returncode != 0:
            output = fetched.stdout + fetched.stderr
            raise StackError(f"kafka: mvn dependency:copy-dependencies failed:\n{output}")
        (staging / ".complete").write_text(pom_digest + "\n")
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)

    def format_storage(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        say("kafka: formatting KRaft storage")
        formatted = subprocess.run(
            self.java(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "--cluster-id",
                new_cluster_id(),
                "--config",
                str(self.properties),
            ),
            capture_output=True,
            text=True,
        )
        if formatted.returncode != 0:
            raise StackError(f"kafka: storage format failed:\n{formatted.stdout}{formatted.stderr}")

    def up(self) -> None:
        pid = self.process.running_pid()
        if pid is not None:
            if self.properties.read_text() != self.server_properties():
                say("kafka: settings changed since it started; run `down` then `up` to apply them")
            say(f"kafka: already running (pid {pid})")
        else:
            self.fetch_libs()
            self.logs.mkdir(parents=True, exist_ok=True)
            write_if_changed(self.properties, self.server_properties())
            write_if_changed(self.log4j_config, self.log4j2_xml())
            self.format_storage()
            ensure_port_free(self.settings.kafka_port, "PL_KAFKA_PORT")
            ensure_port_free(self.settings.kafka_controller_port, "PL_KAFKA_CONTROLLER_PORT")
            pid = self.process.start(self.java("kafka.Kafka", str(self.properties)))
            say(f"kafka: started (pid {pid}), waiting for {self.settings.kafka_bootstrap}")
        wait_until(self.answers, self.process, "broker metadata", self.logs / "server.log")

    def answers(self) -> bool:
        if not port_answers(self.settings.kafka_port):
            return False
        try:
            with admin_client(self.settings) as admin:
                admin.list_topics()
        except Exception:
            return False
        return True

    def topic_partitions(self) -> dict[str, int]:
        with admin_client(self.settings) as admin:
            return {
                topic["name"]: len(topic["partitions"])
                for topic in admin.describe_topics()
                if not topic.get("error_code")
            }

    def ensure_topics(self) -> None:
        wanted = self.settings.partitions_by_topic
        existing = self.topic_partitions()
        missing = {name: count for name, count in wanted.items() if name not in existing}
        if missing:
            new_topics = {
                name: {"num_partitions": count, "replication_factor": 1} for name, count in missing.items()
            }
            with admin_client(self.settings) as admin:
                result = admin.create_topics(
                    new_topics,
                    raise_errors=False,
                    wait_for_metadata=True,
                )
            topic_already_exists = 36
            failed = [
                f"{topic['name']} ({topic.get('error_message') or topic['error_code']})"
                for topic in result["topics"]
                if topic["error_code"] not in (0, topic_already_exists)
            ]
            if failed:
                raise StackError(f"kafka: could not create topics: {', '.join(failed)}")
            say(f"kafka: created {len(missing)} topics: {', '.join(sorted(missing))}")
            existing = self.topic_partitions()
        wrong = [
            f"{name} has {existing[name]}, PL_PARTITIONS says {count}"
            for name, count in wanted.items()
            if existing.get(name) != count
        ]
        if wrong:
            # Growing a topic would move customers to other partitions and break co-partitioning.
            raise StackError("kafka: partition counts differ: " + "; ".join(wrong))

    def reset(self) -> None:
        """Empty every pipeline topic: delete them, the worker's state changelog, the notifier's sent
        keys, the redriven dead letters' markers and the consumer groups, then create the topics again."""
        from kafka.errors import CoordinatorNotAvailableError

        doomed = {*self.settings.partitions_by_topic, STATE_CHANGELOG_TOPIC, SLACK_SENT_TOPIC, REDRIVEN_TOPIC}
        with admin_client(self.settings) as admin:
            # A member that was killed stays in its group until its session times out; its committed
            # offsets would then outlive the topics, so wait until every group is really gone.
            deadline = time.monotonic() + 60
            groups = [APP_ID, SINK_GROUP, NOTIFIER_GROUP]
            while groups:
                try:
                    answers = admin.delete_groups(groups)
                except CoordinatorNotAvailableError:  # a new broker creates __consumer_offsets lazily
                    answers = dict.fromkeys(groups, "NonEmptyGroupError")
                groups = [group for group, answer in answers.items() if answer == "NonEmptyGroupError"]
                if groups and time.monotonic() > deadline:
                    raise StackError(f"kafka: consumer groups still have members: {', '.join(groups)}")
                if groups:
                    time.sleep(0.5)
            present = doomed & set(admin.list_topics())
            if present:
                admin.delete_topics(sorted(present), raise_errors=False)
            deadline = time.monotonic() + 60
            while doomed & set(admin.list_topics()):
                if time.monotonic() > deadline:
                    raise StackError("kafka: topics were not deleted within 60 s")
                time.sleep(0.2)
        deadline = time.monotonic() + 30
        while True:  # the broker may still be finishing the deletions
            try:
                self.ensure_topics()
                return
            except StackError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


def new_cluster_id() -> str:
    # Kafka's Uuid format: 16 random bytes, URL-safe base64 without padding, never starting with '-'.
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def require_kafka_python() -> None:
    if importlib.util.find_spec("kafka") is None:
        raise StackError(
            f"kafka-python is not importable by {sys.executable}; "
            "point PL_PYTHON at the project venv (e.g. PL_PYTHON=/path/to/venv/bin/python)"
        )


@contextlib.contextmanager
def admin_client(settings: StackSettings) -> Iterator[object]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="promise-ledger-stack",
        request_timeout_ms=5000,
    )
    try:
        yield admin
    finally:
        admin.close()


# --- ClickHouse ------------------------------------------------------------------------------------


class ClickHouse:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "clickhouse"
        self.logs = self.home / "logs"
        self.config = self.home / "config.xml"
        self.users = self.home / "users.xml"
        self.process = ManagedProcess("clickhouse", self.home, f"--config-file={self.config}")

    def config_xml(self) -> str:
        s = self.settings
        data = self.home / "data"
        return f"""<?xml version="1.0"?>
<!-- Written by deploy/local/stack.py on every start; edit the script, not this file. -->
<yandex>
    <logger>
        <level>information</level>
        <log>{xml_escape(str(self.logs / "clickhouse-server.log"))}</log>
        <errorlog>{xml_escape(str(self.logs / "clickhouse-server.err.log"))}</errorlog>
        <size>100M</size>
        <count>5</count>
    </logger>
    <listen_host>{HOST}</listen_host>
    <tcp_port>{s.clickhouse_port}</tcp_port>
    <http_port>{s.clickhouse_http_port}</http_port>
    <path>{xml_escape(str(data))}/</path>
    <tmp_path>{xml_escape(str(self.home / "tmp"))}/</tmp_path>
    <user_files_path>{xml_escape(str(self.home / "user_files"))}/</user_files_path>
    <format_schema_path>{xml_escape(str(self.home / "format_schemas"))}/</format_schema_path>
    <users_config>{xml_escape(str(self.users))}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>
    <uncompressed_cache_size>1073741824</uncompressed_cache_size>
    <mark_cache_size>1073741824</mark_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
"""

    def users_xml(self) -> str:
        s = self.settings
        password_hash = hashlib.sha256(s.clickhouse_password.encode()).hexdigest()
        admin_hash = hashlib.sha256(s.clickhouse_admin_password.encode()).hexdigest()
        # The packaged `default` user (no password, any network) is left out on purpose. Two accounts, both
        # with a password, reachable from this machine only: the pipeline's, which may insert and read but
        # not create, alter or drop anything (ClickHouse 18.16 has no GRANT, only `allow_ddl`), and an
        # admin account that owns the schema.
        return f"""<?xml version="1.0"?>
<!-- Written by deploy/local/stack.py on every start; edit the script, not this file. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <pipeline>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <allow_ddl>0</allow_ddl>
        </pipeline>
    </profiles>
    <users>
        <{s.clickhouse_user}>
            <password_sha256_hex>{password_hash}</password_sha256_hex>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>pipeline</profile>
            <quota>default</quota>
        </{s.clickhouse_user}>
        <{s.clickhouse_admin_user}>
            <password_sha256_hex>{admin_hash}</password_sha256_hex>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </{s.clickhouse_admin_user}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""

    def server_binary(self) -> str:
        for candidate in CLICKHOUSE_SERVER_CANDIDATES:
            if os.access(candidate, os.X_OK):
                return candidate
        if os.geteuid() != 0:
            raise StackError("clickhouse-server is not installed; as root: apt-get install clickhouse-server")
        say("clickhouse: installing Debian's clickhouse-server (apt-get update, apt-get install)")
        self.logs.mkdir(parents=True, exist_ok=True)
        apt_log = self.logs / "apt.log"
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        with apt_log.open("a") as log:
            for command in (["apt-get", "update"], ["apt-get", "install", "-y", "clickhouse-server"]):
                if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=environment).returncode:
                    raise StackError(f"clickhouse: `{' '.join(command)}` failed\n{tail(apt_log)}")
        for candidate in CLICKHOUSE_SERVER_CANDIDATES:
            if os.access(candidate, os.X_OK):
                return candidate
        raise StackError(f"clickhouse: installed, but no clickhouse-server binary found\n{tail(apt_log)}")

    def up(self) -> None:
        pid = self.process.running_pid()
        if pid is not None:
            if self.config.read_text() != self.config_xml():
                say("clickhouse: settings changed since it started; run `down` then `up` to apply them")
            say(f"clickhouse: already running (pid {pid})")
            # users.xml is re-read by a running server, so a new password applies without a restart.
            write_if_changed(self.users, self.users_xml(), mode=0o600)
        else:
            binary = self.server_binary()
            for directory in (self.logs, self.home / "data", self.home / "tmp"):
                directory.mkdir(parents=True, exist_ok=True)
            write_if_changed(self.config, self.config_xml())
            write_if_changed(self.users, self.users_xml(), mode=0o600)
            ensure_port_free(self.settings.clickhouse_port, "PL_CLICKHOUSE_PORT")
            ensure_port_free(self.settings.clickhouse_http_port, "PL_CLICKHOUSE_HTTP_PORT")
            pid = self.process.start([binary, f"--config-file={self.config}"])
            say(f"clickhouse: started (pid {pid}), waiting for {HOST}:{self.settings.clickhouse_port}")
        err_log = self.logs / "clickhouse-server.err.log"
        wait_until(self.answers, self.process, "SELECT 1 as the pipeline user", err_log)
        self.query(f"CREATE DATABASE IF NOT EXISTS {self.settings.clickhouse_database}", as_admin=True)

    def query(self, sql: str, *, as_admin: bool = False) -> str:
        s = self.settings
        user, key = (
            (s.clickhouse_admin_user, s.clickhouse_admin_password)
            if as_admin
            else (s.clickhouse_user, s.clickhouse_password)
        )
        request = urllib.request.Request(
            f"http://{HOST}:{s.clickhouse_http_port}/",
            data=sql.encode(),
            headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": key},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.read().decode()
        except urllib.error.HTTPError as refused:
            raise StackError(f"clickhouse: {refused.read().decode(errors='replace').strip()}") from refused

    def answers(self) -> bool:
        if not port_answers(self.settings.clickhouse_port):
            return False
        try:
            return self.query("SELECT 1").strip() == "1"
        except (StackError, OSError):
            return False

    def has_database(self) -> bool:
        # ClickHouse 18.16 has no EXISTS DATABASE.
        sql = f"SELECT count() FROM system.databases WHERE name = '{self.settings.clickhouse_database}'"
        return self.query(sql).strip() == "1"


def ensure_port_free(port: int, variable: str) -> None:
    if port_answers(port):
        raise StackError(f"port {HOST}:{port} is in use by another program; set {variable} to a free port")


# --- commands --------------------------------------------------------------------------------------


@contextlib.contextmanager
def state_lock(settings: StackSettings) -> Iterator[None]:
    """Serialises `up` and `down` on one state directory (e.g. two test sessions starting the stack)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with (settings.state_dir / "stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(settings: StackSettings) -> None:
    require_kafka_python()
    started = time.monotonic()
    with state_lock(settings):
        kafka, clickhouse = Kafka(settings), ClickHouse(settings)
        kafka.up()
        clickhouse.up()
        kafka.ensure_topics()
    say(f"stack up in {time.monotonic() - started:.1f}s (state in {settings.state_dir})")


def down(settings: StackSettings) -> None:
    with state_lock(settings):
        for service in (ClickHouse(settings).process, Kafka(settings).process):
            say(f"{service.name}: {'stopped' if service.stop() else 'was not running'}")


def status(settings: StackSettings, out: TextIO = sys.stdout) -> bool:
    require_kafka_python()
    kafka, clickhouse = Kafka(settings), ClickHouse(settings)
    healthy = True

    def report(line: str, ok: bool) -> None:
        nonlocal healthy
        healthy &= ok
        print(f"{'up  ' if ok else 'DOWN'}  {line}", file=out)

    kafka_pid = kafka.process.running_pid()
    kafka_ok = kafka_pid is not None and kafka.answers()
    report(f"kafka {KAFKA_VERSION}  pid {kafka_pid or '-'}  {settings.kafka_bootstrap}", kafka_ok)
    clickhouse_pid = clickhouse.process.running_pid()
    clickhouse_ok = clickhouse_pid is not None and clickhouse.answers()
    report(
        f"clickhouse  pid {clickhouse_pid or '-'}  {HOST}:{settings.clickhouse_port} "
        f"(http {settings.clickhouse_http_port}) as {settings.clickhouse_user}",
        clickhouse_ok,
    )
    if clickhouse_ok:
        report(f"database {settings.clickhouse_database}", clickhouse.has_database())
    if kafka_ok:
        existing = kafka.topic_partitions()
        for topic, partitions in settings.partitions_by_topic.items():
            found = existing.get(topic, 0)
            report(f"topic {topic}  {found}/{partitions} partitions", found == partitions)
    print(f"state directory: {settings.state_dir}", file=out)
    return healthy


def print_exports(settings: StackSettings) -> None:
    for name, value in settings.exports().items():
        print(f"export {name}={shlex.quote(value)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/local/stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status", "env", "reset"))
    command = parser.parse_args(argv).command
    try:
        settings = load_settings()
        if command == "up":
            up(settings)
        elif command == "down":
            down(settings)
        elif command == "reset":
            with state_lock(settings):
                Kafka(settings).reset()
            say("kafka: every pipeline topic is empty")
        elif command == "status":
            return 0 if status(settings) else 1
        else:
            print_exports(settings)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
