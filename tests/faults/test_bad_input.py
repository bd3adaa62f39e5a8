"""Ten thousand malformed records: every one in the dead-letter topic with its reason, counted in the
worker's metrics, and the worker goes on correlating good events afterwards."""

from __future__ import annotations

import random
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kafka.errors import MessageSizeTooLargeError
from prometheus_client.parser import text_string_to_metric_families

from streams import codec
from streams.contract import TOPIC_OF
from streams.contract.events import TIMESTAMP_FIELDS
from streams.settings import ALIGNMENT_TOPIC, DEAD_LETTER_TOPIC
from tests.codec_helpers import decoded_form, fixture_lines

pytestmark = [pytest.mark.stack, pytest.mark.faults]

RECORDS = 10_000
OVERSIZE_BYTES = 900 * 1024  # under Kafka's default 1 MiB message limit, with room for the DLQ envelope
WEB_PORT = 26001
DAY_MS = 24 * 3_600_000
YEAR_MS = 365 * DAY_MS
CUSTOMER_EVENTS = [
    decoded_form(line)
    for line in fixture_lines()
    if line["type"] not in {"ClaimPublished", "ClaimWithdrawn", "StockChanged"}
]
INPUT_TOPICS = sorted(set(TOPIC_OF.values()))
Record = tuple[str, bytes | None, bytes]  # topic, key, value


def _now_ms() -> int:
    return int(time.time() * 1000)


def _event(rng: random.Random, n: int, shift_ms: int = 0, **changes: Any) -> dict[str, Any]:
    """A customer event of the contract, unique by n, its timestamps moved to now + shift_ms."""
    event = dict(rng.choice(CUSTOMER_EVENTS))
    delta = _now_ms() + shift_ms - event["occurred_at"]
    for name in TIMESTAMP_FIELDS:
        if event.get(name) is not None:
            event[name] += delta
    event.update({"event_id": f"bad-{n}", "customer_id": f"bad-customer-{n % 97}", **changes})
    return event


def _keyed(event: dict[str, Any], value: bytes | None = None) -> Record:
    key = event["customer_id"].encode() or None
    return TOPIC_OF[event["type"]], key, value if value is not None else codec.encode(event)


def _random_bytes(rng: random.Random, n: int) -> Record:
    value = bytes([rng.randrange(1, 256)]) + rng.randbytes(rng.randrange(0, 300))  # no magic byte
    return rng.choice(INPUT_TOPICS), f"c-{n}".encode(), value


def _truncated_avro(rng: random.Random, n: int) -> Record:
    event = _event(rng, n)
    value = codec.encode(event)
    return _keyed(event, value[: rng.randrange(6, len(value))])


def _unknown_schema_id(rng: random.Random, n: int) -> Record:
    value = b"\x00" + rng.randrange(10_000, 2**31).to_bytes(4, "big") + rng.randbytes(40)
    return rng.choice(INPUT_TOPICS), f"c-{n}".encode(), value


def _without_customer_id(rng: random.Random, n: int) -> Record:
    event = _event(rng, n, customer_id="")
    return TOPIC_OF[event["type"]], f"c-{n}".encode(), codec.encode(event)


def _without_key(rng: random.Random, n: int) -> Record:
    event = _event(rng, n)
    return TOPIC_OF[event["type"]], None, codec.encode(event)


def _key_of_another_customer(rng: random.Random, n: int) -> Record:
    event = _event(rng, n)
    return TOPIC_OF[event["type"]], b"someone-else", codec.encode(event)


def _unknown_type(rng: random.Random, n: int) -> Record:
    """Valid, registered Avro of a schema that is not an input event: an alignment event."""
    alignment = codec.decode_alignment(_SAMPLE_ALIGNMENT) | {"alignment_id": f"a-{n}"}
    return rng.choice(INPUT_TOPICS), f"c-{n}".encode(), codec.encode_alignment(alignment)


def _before_2000(rng: random.Random, n: int) -> Record:
    """Valid Avro, outside SPEC §3's timestamps (from 2000): the contract refuses it, naming the field."""
    return _keyed(_event(rng, n, shift_ms=-rng.randrange(27 * YEAR_MS, 55 * YEAR_MS)))


def _ahead_of_the_clock(rng: random.Random, n: int) -> Record:
    """Valid values, but from a producer whose clock runs ahead of the worker's by more than the skew."""
    return _keyed(_event(rng, n, shift_ms=rng.randrange(10 * 60_000, 70 * YEAR_MS)))


def _oversize(rng: random.Random, n: int) -> Record:
    return rng.choice(INPUT_TOPICS), f"c-{n}".encode(), b"\x7f" + rng.randbytes(OVERSIZE_BYTES)


_SAMPLE_ALIGNMENT = codec.encode_alignment(
    {
        "alignment_id": "a-0",
        "type": "PROMISE_OPENED",
        "customer_id": "c",
        "at": 0,
        "promise_id": "p",
        "department": "SALES",
        "kind": "DELIVERY",
        "reason": None,
        "due_at": 1,
        "ticket_id": None,
        "root_department": None,
        "promise_ids": [],
        "phrases": [],
        "claim_id": None,
        "campaign_id": None,
        "product": None,
        "rep_name": None,
        "agent_name": None,
        "deal_id": None,
        "order_id": None,
        "delay_s": None,
        "severity": None,
        "cause_event_id": None,
    }
)

MALFORMED: dict[str, tuple[str, Callable[[random.Random, int], Record]]] = {
    "random bytes": ("not_avro", _random_bytes),
    "truncated Avro": ("malformed_avro", _truncated_avro),
    "unknown schema id": ("unknown_schema_id", _unknown_schema_id),
    "valid Avro, empty customer_id": ("invalid_event", _without_customer_id),
    "valid event, no key": ("missing_key", _without_key),
    "valid event, another customer's key": ("key_mismatch", _key_of_another_customer),
    "valid Avro of an output schema": ("unknown_type", _unknown_type),
    "occurred_at before 2000": ("invalid_event", _before_2000),
    "occurred_at minutes to decades ahead": ("timestamp_in_future", _ahead_of_the_clock),
}
OVERSIZE_RECORDS = 8


def _dead_letter_counts(web_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "ledger_dead_letters"
        for sample in family.samples
        if sample.name == "ledger_dead_letters_total"
    }


def test_ten_thousand_malformed_records_all_reach_the_dead_letter_topic_with_their_reason(pipeline) -> None:
    rng = random.Random(8)
    kinds = list(MALFORMED)
    expected: dict[tuple[str, int, int], str] = {}
    publisher = pipeline.publisher()
    started = time.monotonic()
    worker = pipeline.start_worker(web_port=WEB_PORT)
    sent = []
    for n in range(RECORDS - OVERSIZE_RECORDS):
        reason, make = MALFORMED[kinds[n % len(kinds)]]
        topic, key, value = make(rng, n)
        sent.append((reason, publisher.send_raw(topic, value, key=key)))
    for n in range(OVERSIZE_RECORDS):
        topic, key, value = _oversize(rng, n)
        sent.append(("not_avro", publisher.send_raw(topic, value, key=key)))
    # Anything over the broker's 1 MiB limit never enters the pipeline: the producer refuses it.
    with pytest.raises(MessageSizeTooLargeError):
        publisher.send_raw(INPUT_TOPICS[0], bytes(1_100_000), key=b"c").get(timeout=10)
    publisher.flush()
    for reason, future in sent:
        metadata = future.get(timeout=30)
        expected[(metadata.topic, metadata.partition, metadata.offset)] = reason
    publisher.close()
    good_customer = "after-10k-bad"
    commitment = next(e for e in CUSTOMER_EVENTS if e["type"] == "CommitmentMade")
    delta = _now_ms() - DAY_MS - commitment["occurred_at"]
    good = commitment | {
        "event_id": "good-1",
        "customer_id": good_customer,
        "occurred_at": commitment["occurred_at"] + delta,
        "deliver_by": commitment["deliver_by"] + delta,
    }
    pipeline.publish([good])

    dead = pipeline.read(
        DEAD_LETTER_TOPIC,
        lambda r: codec.decode_dead_letter(r.value),
        until=lambda got: len(got) >= RECORDS,
        timeout_s=150,
    )
    elapsed = time.monotonic() - started

    got = {(d["topic"], d["partition"], d["offset"]): d["reason"] for d in dead}
    assert len(dead) == RECORDS, f"{len(dead)} dead letters for {RECORDS} bad records"
    assert got == expected
    assert all(d["detail"] for d in dead)
    assert sum(len(d["value"]) >= OVERSIZE_BYTES for d in dead) == OVERSIZE_RECORDS
    wanted_counts = Counter(expected.values())
    assert _dead_letter_counts(WEB_PORT) == {reason: float(n) for reason, n in wanted_counts.items()}

    opened = pipeline.read(
        ALIGNMENT_TOPIC,
        lambda r: codec.decode_alignment(r.value),
        until=lambda got: any(e["customer_id"] == good_customer for e in got),
    )
    assert [e["type"] for e in opened if e["customer_id"] == good_customer][:1] == ["PROMISE_OPENED"]
    assert worker.poll() is None, pipeline.log_of("worker")
    print(f"\n{RECORDS} malformed records dead-lettered in {elapsed:.1f}s: {dict(wanted_counts)}")
