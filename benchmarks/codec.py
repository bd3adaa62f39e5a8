"""Encode/decode rates of the Avro codec for a realistic event mix (records/s, best of 3 rounds).

Run: `PYTHONPATH=. python benchmarks/codec.py [N]`. Also measures the two choices the codec made:
validating every encoded dict (fastavro's writer alone silently truncates 1.5 to 1), and reading
timestamps as plain longs instead of letting fastavro build datetimes and converting them back.
"""

from __future__ import annotations

import io
import random
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro

sys.path.insert(0, "tests")
from codec_helpers import decoded_form, fixture_lines

from streams.codec import AvroCodec, read_container, write_container

# Rough shape of a day of a mid-size company: orders and their fulfilment dominate, claims are rare.
MIX = {
    "CustomerExposed": 14,
    "OrderPlaced": 12,
    "OrderShipped": 11,
    "OrderDelivered": 11,
    "AgentReplied": 9,
    "TicketOpened": 6,
    "CommitmentMade": 5,
    "CommitmentApproved": 4,
    "StockChanged": 4,
    "TicketResolved": 5,
    "SatisfactionRated": 4,
    "ServicePromiseMade": 3,
    "CallbackMade": 2,
    "RefundIssued": 1,
    "CommitmentAmended": 1,
    "ClaimPublished": 1,
    "ClaimWithdrawn": 1,
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def event_mix(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for line in fixture_lines():
        by_type.setdefault(line["type"], []).append(decoded_form(line))
    types = list(MIX)
    weights = [MIX[name] for name in types]
    events = []
    for number in range(count):
        event = dict(rng.choice(by_type[rng.choices(types, weights)[0]]))
        event["event_id"] = f"ev-{number:08d}"
        event["occurred_at"] += number * 1000
        events.append(event)
    return events


def rate(label: str, count: int, run: Callable[[], object]) -> None:
    best = min(_timed(run) for _ in range(3))
    print(f"{label:58} {count / best:>12,.0f} records/s")


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def decode_via_datetimes(codec: AvroCodec, values: Iterable[bytes]) -> None:
    """The alternative: parse the schemas as written, let fastavro build datetimes, convert to ms."""
    logical = {
        codec.schema_id(name): (schema.type_name, fastavro.parse_schema(schema.source))
        for name, schema in codec.schemas.items()
    }
    for value in values:
        type_name, schema = logical[int.from_bytes(value[1:5], "big")]
        body = io.BytesIO(value)
        body.seek(5)
        record = fastavro.schemaless_reader(body, schema)
        {
            "type": type_name,
            **{k: (v - EPOCH) // ONE_MS if isinstance(v, datetime) else v for k, v in record.items()},
        }


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    codec = AvroCodec()
    events = event_mix(count)
    values = [codec.encode(event) for event in events]
    print(f"{count:,} events, {len(MIX)} types, mean framed size {sum(map(len, values)) / count:.0f} bytes")

    rate(
        "encode (checked: keys + fastavro validate, then write)",
        count,
        lambda: [codec.encode(e) for e in events],
    )
    writers = {
        e["type"]: codec.schemas[f"promise_ledger.{_department(codec, e['type'])}.{e['type']}"].plain
        for e in events
    }

    def encode_unchecked() -> None:
        for event in events:
            buffer = io.BytesIO()
            buffer.write(b"\x00\x00\x00\x00\x01")
            fastavro.schemaless_writer(buffer, writers[event["type"]], event)
            buffer.getvalue()

    rate("encode unchecked (fastavro write only, for comparison)", count, encode_unchecked)
    rate("decode (timestamps read as longs -> int ms)", count, lambda: [codec.decode(v) for v in values])
    rate(
        "decode via datetimes then -> int ms (alternative)",
        count,
        lambda: decode_via_datetimes(codec, values),
    )

    container = io.BytesIO()
    rate(
        "container file write (checked, deflate)", count, lambda: write_container(io.BytesIO(), events, codec)
    )
    write_container(container, events, codec)
    rate("container file read", count, lambda: list(read_container(io.BytesIO(container.getvalue()), codec)))


def _department(codec: AvroCodec, type_name: str) -> str:
    return next(schema.department for schema in codec.schemas.values() if schema.type_name == type_name)


if __name__ == "__main__":
    main()
