"""The local stack (deploy/local/stack) as the pipeline and its operators rely on it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException
from kafka.admin import KafkaAdminClient

from tests.conftest import STACK_SCRIPT

pytestmark = pytest.mark.stack

LISTEN_STATE = "0A"


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port`, from /proc (IPv4 and IPv6 tables)."""
    addresses = set()
    for table, width in ((Path("/proc/net/tcp"), 8), (Path("/proc/net/tcp6"), 32)):
        for row in table.read_text().splitlines()[1:]:
            local, _remote, state = row.split()[1:4]
            address_hex, port_hex = local.split(":")
            if state == LISTEN_STATE and int(port_hex, 16) == port:
                addresses.add(decode_proc_address(address_hex, width))
    return addresses


def decode_proc_address(address_hex: str, width: int) -> str:
    # /proc/net/tcp* print each 32-bit word in host (little-endian) byte order.
    words = [bytes.fromhex(address_hex[i : i + 8])[::-1] for i in range(0, width, 8)]
    raw = b"".join(words)
    if width == 8:
        return ".".join(str(byte) for byte in raw)
    if raw[:12] == b"\0" * 10 + b"\xff\xff":
        return ".".join(str(byte) for byte in raw[12:])
    return raw.hex()


def run_status(environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STACK_SCRIPT), "status"], capture_output=True, text=True, env=environment
    )


def test_status_reports_every_part_up(stack, stack_module) -> None:
    status = run_status()
    assert status.returncode == 0, status.stdout + status.stderr
    up_lines = [line for line in status.stdout.splitlines() if line.startswith("up ")]
    expected = ["kafka", "clickhouse", f"database {stack.clickhouse_database}"] + [
        f"topic {topic} " for topic in stack_module.TOPICS
    ]
    for part in expected:
        assert any(part in line for line in up_lines), part
    assert "DOWN" not in status.stdout


def test_status_fails_when_nothing_runs(tmp_path: Path, stack_module) -> None:
    idle_ports = {
        name: str(port) for name, port in zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True)
    }
    status = run_status({**os.environ, "PL_STATE_DIR": str(tmp_path), **idle_ports})
    assert status.returncode != 0
    assert [line.split()[1] for line in status.stdout.splitlines() if line.startswith("DOWN")] == [
        "kafka",
        "clickhouse",
    ]


PORT_VARIABLES = (
    "PL_KAFKA_PORT",
    "PL_KAFKA_CONTROLLER_PORT",
    "PL_CLICKHOUSE_PORT",
    "PL_CLICKHOUSE_HTTP_PORT",
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for listener in sockets:
            listener.bind(("127.0.0.1", 0))
        return [listener.getsockname()[1] for listener in sockets]
    finally:
        for listener in sockets:
            listener.close()


def test_topics_exist_with_the_configured_partition_counts(stack) -> None:
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap, client_id="test-stack")
    try:
        described = {topic["name"]: len(topic["partitions"]) for topic in admin.describe_topics()}
    finally:
        admin.close()
    for topic, partitions in stack.partitions_by_topic.items():
        assert described.get(topic) == partitions, topic


def test_department_topics_are_co_partitioned(stack, stack_module) -> None:
    counts = {stack.partitions_by_topic[topic] for topic in stack_module.COPARTITIONED_TOPICS}
    assert counts == {stack.topic_partitions}


def test_aiokafka_produces_and_consumes_against_the_broker(stack) -> None:
    """Faust's client (aiokafka) works with the broker version we run: a keyed record round-trips."""
    topic = "alignment.dlq"
    key, value = b"customer-" + uuid.uuid4().hex.encode(), b"probe"

    async def round_trip() -> tuple[bytes, bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, value=value, key=key)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=stack.kafka_bootstrap, group_id=f"test-stack-{uuid.uuid4().hex}"
        )
        await consumer.start()
        try:
            partition = TopicPartition(topic, sent.partition)
            consumer.assign([partition])
            consumer.seek(partition, sent.offset)
            record = await asyncio.wait_for(consumer.getone(), timeout=20)
            await consumer.commit()
            return record.key, record.value
        finally:
            await consumer.stop()

    assert asyncio.run(round_trip()) == (key, value)


def test_clickhouse_answers_the_pipeline_user_in_its_database(stack) -> None:
    client = Client(
        host="127.0.0.1",
        port=stack.clickhouse_port,
        user=stack.clickhouse_user,
        password=stack.clickhouse_password,
        database=stack.clickhouse_database,
    )
    try:
        assert client.execute("SELECT currentDatabase()") == [(stack.clickhouse_database,)]
    finally:
        client.disconnect()


@pytest.mark.parametrize("user_kind", ["wrong password", "packaged default user"])
def test_clickhouse_refuses_other_credentials(stack, user_kind: str) -> None:
    user, password = {
        "wrong password": (stack.clickhouse_user, stack.clickhouse_password + "-wrong"),
        "packaged default user": ("default", ""),
    }[user_kind]
    client = Client(host="127.0.0.1", port=stack.clickhouse_port, user=user, password=password)
    try:
        with pytest.raises(ServerException) as refused:
            client.execute("SELECT 1")
    finally:
        client.disconnect()
    assert refused.value.code in (192, 193, 516)  # UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED


@pytest.mark.parametrize("service", ["clickhouse native", "clickhouse http", "kafka", "kafka controller"])
def test_servers_listen_on_loopback_only(stack, service: str) -> None:
    port = {
        "clickhouse native": stack.clickhouse_port,
        "clickhouse http": stack.clickhouse_http_port,
        "kafka": stack.kafka_port,
        "kafka controller": stack.kafka_controller_port,
    }[service]
    assert listening_addresses(port) == {"127.0.0.1"}
