"""A downstream consumer of ``alignment.events``: kafka-python and fastavro, no Promise Ledger code.

    python docs/examples/consume_alignment.py --bootstrap 127.0.0.1:9092 --group my-team --schemas schemas

It prints each alignment event once, as a JSON line (timestamps as epoch milliseconds), and commits its
offsets after handling a batch. Delivery is at least once, so it skips an ``alignment_id`` it has
already handled; a real consumer keeps that memory where it keeps its results (a unique key in its
database), so a restart does not forget it.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro
from kafka import KafkaConsumer

ALIGNMENT_EVENT = "promise_ledger.alignment.AlignmentEvent"
CONFLUENT_HEADER = struct.Struct(">bI")  # magic byte 0, then the schema id, big-endian
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AlignmentDecoder:
    """Confluent-framed Avro -> dict. Writer schemas by id from ``schemas/ids.json`` (every version the
    pipeline ever wrote with); records are resolved into the current schema, so old records still read."""

    def __init__(self, schemas_dir: Path) -> None:
        ids = json.loads((schemas_dir / "ids.json").read_text(encoding="utf-8"))["schemas"]
        self.writers = {
            int(schema_id): fastavro.parse_schema(json.loads((schemas_dir / entry["file"]).read_text()))
            for schema_id, entry in ids.items()
            if entry["name"] == ALIGNMENT_EVENT
        }
        current = json.loads((schemas_dir / "alignment" / "AlignmentEvent.avsc").read_text())
        self.reader = fastavro.parse_schema(current)

    def decode(self, value: bytes) -> dict[str, Any]:
        magic, schema_id = CONFLUENT_HEADER.unpack_from(value)
        if magic != 0 or schema_id not in self.writers:
            raise ValueError(f"not an AlignmentEvent (magic {magic}, schema id {schema_id})")
        record = fastavro.schemaless_reader(
            BytesIO(value[CONFLUENT_HEADER.size :]), self.writers[schema_id], self.reader
        )
        # fastavro turns timestamp-millis into datetimes; the contract speaks epoch milliseconds
        for name in ("at", "due_at"):
            if isinstance(record.get(name), datetime):
                record[name] = (record[name] - EPOCH) // timedelta(milliseconds=1)
        return record


class SeenIds:
    """The last ``size`` alignment ids handled: enough to absorb a redelivered batch."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self.ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, alignment_id: str) -> bool:
        if alignment_id in self.ids:
            return False
        self.ids[alignment_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--group", required=True, help="your team's consumer group")
    parser.add_argument("--topic", default="alignment.events")
    parser.add_argument("--schemas", type=Path, default=Path(__file__).resolve().parents[2] / "schemas")
    parser.add_argument(
        "--max", type=int, default=0, help="stop after the batch that reaches this many events (0: never)"
    )
    args = parser.parse_args()

    decoder = AlignmentDecoder(args.schemas)
    seen = SeenIds()
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,  # commit after handling, never before
        auto_offset_reset="earliest",  # a new group starts with everything the topic still holds
    )
    handled = 0
    try:
        while not args.max or handled < args.max:
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    try:
                        event = decoder.decode(record.value)
                    except (ValueError, struct.error) as error:
                        print(f"skipped offset {record.offset}: {error}", file=sys.stderr)
                        continue
                    if not seen.first_time(event["alignment_id"]):
                        continue  # a redelivery: already handled
                    print(json.dumps(event), flush=True)  # your handling goes here
                    handled += 1
            consumer.commit()  # the whole batch is handled: only now move the group's offsets
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
