"""The Faust app: moves bytes between Kafka and the ``Correlator``; every rule lives elsewhere.

Ordering that makes a kill -9 safe (faust-streaming's exactly-once is not relied on):
1. take a micro-batch of records (``take_events``; offsets are acked only after the batch);
2. hand them to the correlator, collecting outputs and state changes in memory;
3. publish the outputs and wait until Kafka has them (``producer.flush``);
4. only then write the changed ledgers to the table's changelog, on the source partition.
A crash before 4 replays the batch from unchanged state and publishes the same alignment ids again
(consumers de-duplicate by ``alignment_id``); a crash after 4 finds the events already applied, and
their outputs already in Kafka.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from streams.app.correlator import Correlator, Produced, SourceRecord
from streams.settings import (
    ALERTS_TOPIC,
    ALIGNMENT_TOPIC,
    DEAD_LETTER_TOPIC,
    INPUT_TOPICS,
    TICKS_TOPIC,
    Settings,
    worker_settings,
)

log = logging.getLogger(__name__)

LAG = Gauge("ledger_consumer_lag", "Records not yet processed", ["topic", "partition"])
OPEN_PROMISES = Gauge("ledger_open_promises", "Promises neither kept nor broken yet", ["partition"])

settings = Settings.from_env()
tuning = worker_settings()

app = faust.App(
    "promise-ledger",
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="memory://",
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    producer_acks=-1,
    consumer_auto_offset_reset="earliest",
    web_host="127.0.0.1",
    web_port=tuning.web_port,
)

_raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
sources = app.topic(*INPUT_TOPICS, TICKS_TOPIC, **_raw)
ticks = app.topic(TICKS_TOPIC, **_raw)
alignment_topic = app.topic(ALIGNMENT_TOPIC, **_raw)
alerts_topic = app.topic(ALERTS_TOPIC, **_raw)
dead_letter_topic = app.topic(DEAD_LETTER_TOPIC, **_raw)
state = app.Table("ledger-state", partitions=settings.partitions, key_type=bytes, value_type=bytes)


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


correlator = Correlator(state.data, wall_clock_ms=_wall_clock_ms, config=tuning.engine_config)
_started_at = time.monotonic()
_last_input: dict[int, float] = {}  # partition -> monotonic time of its last input record
_next_offset: dict[TP, int] = {}


async def _caught_up(partition: int) -> bool:
    """Every input topic's partition is read to its end, and has been quiet for ``idle_after_s``.

    Until the consumer knows a partition's high-water mark, the answer is no: after a restart the
    clock must not jump to wall time ahead of a backlog it has not read yet.
    """
    if time.monotonic() - _last_input.get(partition, _started_at) < tuning.idle_after_s:
        return False
    for topic in INPUT_TOPICS:
        tp = TP(topic, partition)
        highwater = app.consumer.highwater(tp)
        if highwater is None:
            return False
        read_to = _next_offset.get(tp)
        if read_to is None:
            read_to = await app.consumer.position(tp) or 0
        lag = max(highwater - read_to, 0)
        LAG.labels(topic, str(partition)).set(lag)
        if lag:
            return False
    return True


async def _publish(produced: Produced) -> None:
    for topic, records in (
        (alignment_topic, produced.alignment),
        (alerts_topic, produced.alerts),
        (dead_letter_topic, produced.dead_letters),
    ):
        for key, value in records:
            await topic.send(key=key, value=value)
    await app.producer.flush()


def _persist_state() -> None:
    for partition, key, value in correlator.take_state_changes():
        if value is None:
            state.data.pop(key, None)
        else:
            state.data[key] = value
        state.send_changelog(partition, key, value)


@app.agent(sources)
async def correlate(stream: faust.StreamT[Any]) -> None:
    # concurrency stays 1: table-mutating agents with concurrency > 1 can lose offsets (faust #606).
    async for events in stream.take_events(tuning.batch_size, within=tuning.batch_wait_s):
        produced = Produced()
        for event in events:
            message = event.message
            if message.topic == TICKS_TOPIC:
                if await _caught_up(message.partition):
                    correlator.advance(message.partition, _wall_clock_ms(), produced)
                continue
            _last_input[message.partition] = time.monotonic()
            _next_offset[TP(message.topic, message.partition)] = message.offset + 1
            record = SourceRecord(
                message.topic, message.partition, message.offset, message.key, message.value
            )
            correlator.handle(record, produced)
        await _publish(produced)
        _persist_state()


@app.timer(interval=1.0)
async def tick_every_partition() -> None:
    for partition in range(settings.partitions):
        await ticks.send(value=b"", partition=partition)


@app.timer(interval=15.0)
async def count_open_promises() -> None:
    for partition in range(settings.partitions):
        OPEN_PROMISES.labels(str(partition)).set(correlator.open_promises(partition))


@app.on_partitions_revoked.connect
async def _forget_revoked(app: faust.App, revoked: set[TP], **kwargs: Any) -> None:
    correlator.forget({tp.partition for tp in revoked if tp.topic in INPUT_TOPICS})


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST)
