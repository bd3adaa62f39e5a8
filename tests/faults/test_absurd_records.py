"""No record stops a stage (issue "No record, value or refusal stops a stage"): records that are valid Avro
but absurd, each followed by a good event, through worker, sink and notifier on the real stack. Every
absurd one is dead-lettered with a reason that names the field (or, for a redelivery with other
content, as a conflicting duplicate); the good event is correlated, alerted in Slack and in ClickHouse
within the usual latency; no process restarts."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from streams import codec
from streams.settings import DEAD_LETTER_TOPIC
from streams.slack.receiver import SlackLikeReceiver
from tests.clickhouse_engines import pipeline_client
from tests.live_pipeline import HOUR_MS, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.faults]

YEAR_1_MS = -62_135_596_800_000
YEAR_9999_MS = 253_370_764_800_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _commitment(customer: str, made_at: int, **changes: Any) -> dict[str, Any]:
    return {
        "type": "CommitmentMade",
        "event_id": f"{customer}-commit",
        "customer_id": customer,
        "occurred_at": made_at,
        "source": "salesforce",
        "commitment_id": f"{customer}-commitment",
        "deal_id": f"{customer}-deal",
        "rep_name": "Dana",
        "product": "lamp",
        "quantity": 2,
        "deliver_by": made_at + HOUR_MS // 2,
        "unit_price": 49.0,
        "features": [],
        **changes,
    }


def _absurd(now: int) -> dict[str, tuple[dict[str, Any], str]]:
    """name -> (record, what its dead letter's detail must name)."""
    made = now - HOUR_MS
    return {
        "deadline in year 1": (_commitment("absurd-1", made, deliver_by=YEAR_1_MS), "deliver_by"),
        "deadline in year 9999": (_commitment("absurd-2", made, deliver_by=YEAR_9999_MS), "deliver_by"),
        "negative quantity": (_commitment("absurd-3", made, quantity=-3), "quantity"),
        "infinite price": (_commitment("absurd-4", made, unit_price=math.inf), "unit_price"),
        "NaN price": (_commitment("absurd-5", made, unit_price=math.nan), "unit_price"),
        "200 kB name": (_commitment("absurd-6", made, rep_name="x" * 200_000), "rep_name"),
        "20,000 features": (
            _commitment("absurd-7", made, features=[f"f{n}" for n in range(20_000)]),
            "features",
        ),
        "an event from 1900": (
            _commitment("absurd-8", -2_208_988_800_000, deliver_by=-2_208_988_800_000 + HOUR_MS),
            "occurred_at",
        ),
    }


def test_absurd_records_are_dead_lettered_and_a_good_event_after_them_flows_to_slack_and_clickhouse(
    pipeline, stack, scratch_database
) -> None:
    now = _now_ms()
    absurd = _absurd(now)
    duplicate = _commitment("dup", now - HOUR_MS)
    conflicting = {**duplicate, "quantity": 7}
    good = _commitment("good-after-absurd", now - HOUR_MS)  # due 30 min ago: broken, alerted
    with SlackLikeReceiver() as slack:
        worker = pipeline.start_worker()
        sink = pipeline.start(
            "sink", "sink", "--batch-wait", "0.2", "--metrics-port", "0",
            env={"PL_CLICKHOUSE_DATABASE": scratch_database},
        )  # fmt: skip
        notifier = pipeline.start(
            "notify",
            "notify",
            "--window",
            "1",
            "--metrics-port",
            "0",
            env={"PL_SLACK_WEBHOOK_URL": slack.url},
        )
        publisher = pipeline.publisher()
        for record, _ in absurd.values():
            publisher.send_raw("sales.events", codec.encode(record), key=record["customer_id"].encode())
        publisher.publish_all([duplicate, conflicting, good])
        publisher.close()
        letters = pipeline.read(
            DEAD_LETTER_TOPIC,
            lambda r: codec.decode_dead_letter(r.value),
            until=lambda got: len(got) >= len(absurd) + 1,
        )
        by_customer = {codec.decode(letter["value"])["customer_id"]: letter for letter in letters}
        for name, (record, field) in absurd.items():
            letter = by_customer[record["customer_id"]]
            assert (letter["reason"], field in letter["detail"]) == ("invalid_event", True), name
        assert by_customer["dup"]["reason"] == "conflicting_duplicate"

        wait_for(
            lambda: any("good-after-absurd" in str(m.payload) for m in slack.messages),
            60,
            "the good alert in Slack",
        )
        client = pipeline_client(stack, scratch_database)
        query = (
            "SELECT count() FROM alignment_events FINAL WHERE customer_id = %(c)s AND type = 'PROMISE_BROKEN'"
        )
        breaks = lambda: client.execute(query, {"c": "good-after-absurd"})[0][0]  # noqa: E731
        wait_for(lambda: breaks() == 1, 60, "the good event's break in ClickHouse")
        assert [p.poll() for p in (worker, sink, notifier)] == [None, None, None], "a stage stopped"
