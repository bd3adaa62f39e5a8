"""The Faust app: moves bytes between Kafka and the ``Correlator``; every rule lives elsewhere.

Ordering that makes a kill -9 safe (faust-streaming's exactly-once is not relied on):
1. gather a micro-batch of records, unacknowledged;
2. merge the input topics back into publication order (merge.py) and hand the records that are
   ready to the correlator, collecting outputs and state changes in memory;
3. publish the outputs and wait until Kafka has them (``producer.flush``);
4. only then write the changed ledgers to the table's changelog, on the source partition.
A crash before 4 replays the batch from unchanged state and publishes the same alignment ids again
(consumers de-duplicate by ``alignment_id``); a crash after 4 finds the events already applied, and
their outputs already in Kafka. Records are acknowledged (their offsets become committable) only
after step 4, and only those applied: one still waiting in the merger is fetched again after a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import TP, EventT
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

from streams.app.correlator import Correlator, Limits, Produced, SourceRecord
from streams.app.merge import PartitionMerger
from streams.app.progress import InputProgress
from streams.app.sequence import OffsetSequencer, Verdict
from streams.publish import MAX_AHEAD_MS
from streams.settings import (
    ALERTS_TOPIC,
    ALIGNMENT_TOPIC,
    APP_ID,
    DEAD_LETTER_TOPIC,
    INPUT_TOPICS,
    STATE_TABLE,
    TICKS_TOPIC,
    Settings,
    worker_settings,
)

log = logging.getLogger(__name__)

LAG = Gauge("ledger_consumer_lag", "Records not yet processed", ["topic", "partition"])
REWINDS = Counter("ledger_source_rewinds_total", "Input partitions fetched again over a gap", ["topic"])
ASSIGNED = Gauge("ledger_assigned_partitions", "Input partitions this worker owns")
OPEN_PROMISES = Gauge("ledger_open_promises", "Promises neither kept nor broken yet", ["partition"])

settings = Settings.from_env()
tuning = worker_settings()

app = faust.App(
    APP_ID,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="memory://",
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    producer_acks=-1,
    consumer_auto_offset_reset="earliest",
    # web_bind is where the server listens (Faust's default is every interface); web_host only names it.
    web_bind=tuning.web_host,
    web_host=tuning.web_host,
    web_port=tuning.web_port,
    datadir=tuning.data_dir,
    # Records held in the merger are unacknowledged by design; a rebalance or shutdown must not wait
    # for them (it would wait forever): their next owner fetches them again from the committed offset.
    stream_wait_empty=False,
    # A worker killed without leaving the group hands its partitions over after this long.
    broker_session_timeout=tuning.session_timeout_s,
    broker_heartbeat_interval=min(3.0, tuning.session_timeout_s / 3),
)

_raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
sources = app.topic(*INPUT_TOPICS, TICKS_TOPIC, **_raw)
ticks = app.topic(TICKS_TOPIC, **_raw)
state = app.Table(STATE_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


engine_config = tuning.engine_config
correlator = Correlator(
    state.data,
    wall_clock_ms=_wall_clock_ms,
    config=engine_config,
    limits=Limits.for_skew(tuning.max_skew_s, engine_config),
)
_revoked_engines: set[int] = set()  # partitions revoked while a batch was in flight
merger: PartitionMerger[EventT] = PartitionMerger(INPUT_TOPICS)
progress = InputProgress(
    INPUT_TOPICS,
    delivery_bound_ms=int(tuning.delivery_bound_s * 1000),
    quiet_ms=int(tuning.idle_after_s * 1000),
)
sequencer = OffsetSequencer()
#: how far ahead of its arrival a record's timestamp counts in the merge: a publisher's burst runs at
#: most MAX_AHEAD_MS ahead; a producer whose clock is further ahead must not hold its topic for hours.
_MERGE_AHEAD_MS = MAX_AHEAD_MS + int(tuning.delivery_bound_s * 1000)


def _highwater(tp: TP) -> int | None:
    """The end of the partition as last fetched; None if unknown, or if a rebalance has just taken the
    partition from the consumer (aiokafka asserts that it holds it)."""
    try:
        return app.consumer.highwater(tp)
    except AssertionError:
        return None


def _caught_up_at(partition: int) -> int | None:
    """The wall time (ms) at which the partition is proven caught up and quiet (progress.py)."""
    if not merger.is_empty(partition):
        return None
    positions = {topic: _fetch_position(TP(topic, partition)) for topic in INPUT_TOPICS}
    for topic, position in positions.items():
        end = progress.end(topic, partition)
        if end is not None:
            LAG.labels(topic, str(partition)).set(max(end - position, 0))
    return progress.caught_up_at(partition, positions)


async def _start_sequences(tps: set[TP], generation: int, now: float) -> bool:
    """Tell the sequencer where each partition resumes; False if a rebalance came meanwhile."""
    resume_at = await _resume_offsets(tps)
    if app.consumer_generation_id != generation:
        return False
    for tp, offset in resume_at.items():
        sequencer.resume(tp, offset, now)
    return True


async def _fetch_again(tp: TP, offset: int | None, seen: int) -> None:
    if offset is None:
        return
    log.info("%s: the consumer skipped offsets %d..%d; fetching them again", tp, offset, seen - 1)
    REWINDS.labels(tp.topic).inc()
    try:
        # seek_wait runs in the consumer's own thread; a plain seek from here races aiokafka's fetcher.
        await app.consumer.seek_wait({tp: offset})
    except (KafkaError, AssertionError, TimeoutError):  # a rebalance took it meanwhile: its owner reads it
        log.info("%s: no longer assigned; not fetched again here", tp)


async def _resume_offsets(tps: set[TP]) -> dict[TP, int]:
    """Where each partition's records start for this worker: after the last one its state holds, else
    at its committed offset, else at its first (asked of the broker once for all of them: one request
    per partition cost seconds when a worker started on 24 of them)."""
    resume_at: dict[TP, int] = {}
    for tp in tps:
        applied_to = correlator.applied_to(tp.partition, tp.topic)
        committed = app.consumer._committed_offset.get(tp)
        if applied_to is not None:
            resume_at[tp] = applied_to
        elif committed:
            resume_at[tp] = committed
    unknown = tps - resume_at.keys()
    if unknown:
        try:
            earliest = await app.consumer.earliest_offsets(*unknown)
        except (KafkaError, AssertionError):  # taken away by a rebalance meanwhile: its owner reads it
            earliest = {}
        resume_at.update({tp: earliest.get(tp, 0) for tp in unknown})
    return resume_at


async def _publish(produced: Produced) -> None:
    # Straight to the producer: the records are bytes already, and Faust's per-message channel
    # machinery (serializers, sensors, its send buffer) cost more than the engine itself.
    send = app.producer.send
    deliveries = []
    for topic, records in (
        (ALIGNMENT_TOPIC, produced.alignment),
        (ALERTS_TOPIC, produced.alerts),
        (DEAD_LETTER_TOPIC, produced.dead_letters),
    ):
        for key, value in records:
            deliveries.append(await send(topic, key, value, partition=None, timestamp=None, headers=None))
    await _delivered(deliveries)


async def _persist_state() -> None:
    send = app.producer.send
    changelog = state.changelog_topic.get_topic_name()
    deliveries = []
    for partition, key, value in correlator.take_state_changes():
        if value is None:
            state.data.pop(key, None)
        else:
            state.data[key] = value
        delivery = await send(changelog, key, value, partition=partition, timestamp=None, headers=None)
        deliveries.append(delivery)
    await _delivered(deliveries)


async def _delivered(deliveries: list[Any]) -> None:
    """Wait until Kafka has every record; a record it refused raises here, before anything is acked
    (aiokafka's flush waits for failed batches as for good ones, without raising)."""
    await app.producer.flush()
    await asyncio.gather(*deliveries)


async def _ask_ends(partitions: set[int]) -> None:
    """Ask the broker for the end offsets of the partitions' input topics, noting when the request
    went out: the merge and the idle clock trust only answers to requests sent after what they
    conclude about (progress.py); the consumer's own high-water marks may predate a burst."""
    assigned = app.consumer.assignment()
    tps = [TP(topic, partition) for partition in sorted(partitions) for topic in INPUT_TOPICS]
    tps = [tp for tp in tps if tp in assigned]
    if not tps:
        return
    asked_at_ms = _wall_clock_ms()
    try:
        ends = await app.consumer.highwaters(*tps)
    except (KafkaError, AssertionError) as error:  # nothing is concluded until an answer comes
        log.warning("could not ask for end offsets (%s)", type(error).__name__)
        return
    progress.asked({(tp.topic, tp.partition): offset for tp, offset in ends.items()}, asked_at_ms)


def _complete_through(partition: int) -> Callable[[str], int]:
    def complete_through(topic: str) -> int:
        return progress.complete_through(topic, partition, _fetch_position(TP(topic, partition)))

    return complete_through


def _fetch_position(tp: TP) -> int:
    """The offset after the last record received in sequence; before any, the committed offset (which
    faust keeps only as a private attribute)."""
    received_to = sequencer.next_offset(tp)
    if received_to is not None:
        return received_to
    return app.consumer._committed_offset.get(tp) or 0


async def _apply(stream: faust.StreamT[Any], batch: list[EventT]) -> None:
    """One micro-batch: merge, apply, publish, flush, persist state, then ack what was applied."""
    produced = Produced()
    applied: list[EventT] = []
    ticked: set[int] = set()
    now = time.monotonic()
    now_ms = _wall_clock_ms()
    _drop_revoked_engines()
    generation = app.consumer_generation_id
    starting = {
        event.message.tp
        for event in batch
        if event.message.topic != TICKS_TOPIC and not sequencer.knows(event.message.tp)
    }
    if starting and not await _start_sequences(starting, generation, now):
        generation = -1  # a rebalance came meanwhile: the partitions' new owners fetch these again
    for event in batch:
        message = event.message
        if message.generation_id != generation:
            continue  # fetched before a rebalance: its partition's new owner fetches it again
        if message.topic == TICKS_TOPIC:
            ticked.add(message.partition)
            applied.append(event)
            continue
        tp = message.tp
        if not sequencer.knows(tp):
            continue  # revoked during a seek below: fetched again by whoever owns it now
        progress.heard(message.partition, now_ms)
        verdict = sequencer.admit(tp, message.offset, now)
        if verdict is Verdict.PAST_A_GAP:
            await _fetch_again(tp, sequencer.rewind_to(tp, now), message.offset)
            continue
        if verdict is Verdict.SECOND_COPY:
            if message.offset < (correlator.applied_to(message.partition, message.topic) or 0):
                applied.append(event)  # its first copy is applied: acking this one lets the commit move on
            continue
        timestamp_ms = min(round(message.timestamp * 1000), now_ms + _MERGE_AHEAD_MS)
        merger.add(message.partition, message.topic, timestamp_ms, event)
    waiting = {partition for partition in merger.partitions() if not merger.is_empty(partition)}
    await _ask_ends(waiting | ticked)
    for partition in merger.partitions():
        for event in merger.release(partition, _complete_through(partition)):
            message = event.message
            correlator.handle(
                SourceRecord(message.topic, message.partition, message.offset, message.key, message.value),
                produced,
            )
            applied.append(event)
    for partition in sorted(ticked):
        caught_up_at = _caught_up_at(partition)
        if caught_up_at is not None:
            correlator.advance(partition, caught_up_at, produced)
    await _publish(produced)
    await _persist_state()
    for event in applied:
        await stream.ack(event)
    _drop_revoked_engines()


def _drop_revoked_engines() -> None:
    correlator.forget(_revoked_engines)
    _revoked_engines.clear()


@app.agent(sources)
async def correlate(stream: faust.StreamT[Any]) -> None:
    # Concurrency stays 1: table-mutating agents with concurrency > 1 can lose offsets (faust #606).
    # Acks are manual: a record still waiting in the merger must not have its offset committed.
    unacked = stream.noack()
    batch: list[EventT] = []
    opened_at = 0.0
    async for event in unacked.events():
        if not batch:
            opened_at = time.monotonic()
        batch.append(event)
        # Ticks arrive twice a second on every partition, so a partial batch never waits longer.
        if len(batch) >= tuning.batch_size or time.monotonic() - opened_at >= tuning.batch_wait_s:
            await _apply(unacked, batch)
            batch = []


@app.timer(interval=0.5)
async def tick_every_partition() -> None:
    for partition in range(settings.partitions):
        await ticks.send(value=b"", partition=partition)


@app.timer(interval=1.0)
async def fetch_stalled_partitions_again() -> None:
    if app.rebalancing:
        return
    generation = app.consumer_generation_id
    now = time.monotonic()
    ends: dict[TP, int] = {}
    for tp in app.consumer.assignment():
        highwater = _highwater(tp)
        if tp.topic in INPUT_TOPICS and highwater is not None:
            ends[tp] = highwater
    # A partition none of whose records arrived: they may all have been dropped, revealing no gap.
    starting = {tp for tp in ends if not sequencer.knows(tp)}
    if starting and not await _start_sequences(starting, generation, now):
        return
    for tp, offset in sequencer.stalled(ends, now).items():
        await _fetch_again(tp, offset, ends[tp])


@app.timer(interval=15.0)
async def count_open_promises() -> None:
    for partition in range(settings.partitions):
        OPEN_PROMISES.labels(str(partition)).set(correlator.open_promises(partition))


@app.on_partitions_assigned.connect
async def _count_assigned(app: faust.App, assigned: set[TP], **kwargs: Any) -> None:
    ASSIGNED.set(len({tp.partition for tp in assigned if tp.topic in INPUT_TOPICS}))


@app.on_partitions_revoked.connect
async def _forget_revoked(app: faust.App, revoked: set[TP], **kwargs: Any) -> None:
    partitions = {tp.partition for tp in revoked if tp.topic in INPUT_TOPICS}
    ASSIGNED.dec(len(partitions))
    # Their buffered records are the new owner's now: it fetches them again from the committed offset.
    merger.forget(partitions)
    progress.forget(partitions)
    # A batch may be waiting on Kafka right now with changes to these partitions: the engines are
    # dropped (to be rebuilt from the store if the partitions come back) once it has persisted them.
    _revoked_engines.update(partitions)
    sequencer.forget(revoked)


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    # aiohttp refuses a content_type argument that carries a charset, so the full type goes as a header.
    return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
