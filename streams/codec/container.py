"""Avro object-container files of input events (what `promise-ledger replay` reads besides JSON lines).

A container file holds one schema. The files this module writes use the union of every input event
record, so one file carries a whole mixed log in order; each record is written with its full name
(fastavro's tuple notation), because several events have identical fields (CallbackMade and
TicketResolved both hold only a ticket_id) and a union must not guess between them. Reading also
accepts files whose schema is a single input record (a source system's export of one type).
Either way records are resolved into the current schemas, so older files stay readable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import fastavro
from fastavro.read import SchemaResolutionError

from streams.codec.errors import EncodeError, IncompatibleSchema, MalformedAvro, UnknownType
from streams.codec.schemas import full_name
from streams.codec.wire import AvroCodec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MILLISECOND = timedelta(milliseconds=1)


def write_container(fo: BinaryIO, events: Iterable[Mapping[str, Any]], codec: AvroCodec) -> int:
    """Write input event dicts to an Avro container file in order; returns how many were written.

    Raises `EncodeError` (naming the event's position) for an event that does not fit its schema.
    """
    union = [schema.source for schema in codec.schemas.values() if schema.is_input]
    written = 0

    def tagged_records() -> Iterator[tuple[str, Mapping[str, Any]]]:
        nonlocal written
        for position, event in enumerate(events, start=1):
            try:
                schema, record = codec.input_record(event)
            except EncodeError as exc:
                raise EncodeError(f"event {position}: {exc}") from None
            written += 1
            yield schema.full_name, record

    fastavro.writer(fo, fastavro.parse_schema(union), tagged_records(), codec="deflate")
    return written


def _epoch_ms(value: Any) -> Any:
    # fastavro applies the logical types of the file's own schema, so timestamps arrive as datetimes here.
    return (value - EPOCH) // ONE_MILLISECOND if isinstance(value, datetime) else value


def read_container(fo: BinaryIO, codec: AvroCodec) -> Iterator[dict[str, Any]]:
    """The input event dicts of an Avro container file, as `AvroCodec.decode` returns them.

    Raises `DecodeError` subclasses: `MalformedAvro` for a damaged file, `UnknownType` for a file
    whose schema is not made of input events, `IncompatibleSchema` for one that cannot be resolved.
    """
    current_inputs = [schema.plain for schema in codec.schemas.values() if schema.is_input]
    try:
        records = fastavro.reader(fo, reader_schema=current_inputs, return_record_name=True)
    except Exception as exc:  # fastavro reports a bad header with assorted exception types
        raise MalformedAvro(f"not an Avro container file: {type(exc).__name__}: {exc}") from exc
    writer_schema = records.writer_schema
    branches = writer_schema if isinstance(writer_schema, list) else [writer_schema]
    names = [full_name(branch) if isinstance(branch, dict) else str(branch) for branch in branches]
    foreign = [name for name in names if name not in codec.schemas or not codec.schemas[name].is_input]
    if foreign:
        raise UnknownType(f"container file holds {', '.join(foreign)}, not only input events")
    single_type = None if isinstance(writer_schema, list) else names[0].rsplit(".", 1)[1]
    try:
        for item in records:
            type_name, record = (
                (item[0].rsplit(".", 1)[1], item[1]) if single_type is None else (single_type, item)
            )
            yield {"type": type_name, **{key: _epoch_ms(value) for key, value in record.items()}}
    except SchemaResolutionError as exc:
        raise IncompatibleSchema(f"container schema cannot be read as the current schemas: {exc}") from exc
    except Exception as exc:  # as above: a damaged block surfaces as assorted exception types
        raise MalformedAvro(f"damaged container file: {type(exc).__name__}: {exc}") from exc
