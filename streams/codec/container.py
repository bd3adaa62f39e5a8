"""Avro object-container files of input events (what `promise-ledger replay` reads besides JSON lines).

A container file holds one schema. The files this module writes use the union of every input event
record, so one file carries a whole mixed log in order; each record is written with its full name
(fastavro's tuple notation), because several events have identical fields (CallbackMade and
TicketResolved both hold only a ticket_id) and a union must not guess between them. Reading also
accepts files whose schema is a single input record (a source system's export of one type).
Either way records are resolved into the current schemas, so older files stay readable.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import fastavro
from fastavro.read import SchemaResolutionError

from streams.codec.errors import EncodeError, IncompatibleSchema, MalformedAvro, UnknownType
from streams.codec.schemas import full_name, schema_fingerprint
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


def read_container(fo: BinaryIO, codec: AvroCodec) -> Iterator[dict[str, Any]]:
    """The input event dicts of an Avro container file, as `AvroCodec.decode` returns them.

    Raises `DecodeError` subclasses: `MalformedAvro` for a damaged file, `UnknownType` for a file
    whose schema is not made of input events, `IncompatibleSchema` for one that cannot be resolved.
    A file written with the current schemas is read without schema resolution (2-3x faster).
    """
    if not fo.seekable():
        fo = io.BytesIO(fo.read())
    start = fo.tell()
    records = _open(fo, reader_schema=None)
    writer_schema = records.writer_schema
    branches = writer_schema if isinstance(writer_schema, list) else [writer_schema]
    names = [full_name(branch) if isinstance(branch, dict) else str(branch) for branch in branches]
    foreign = [name for name in names if name not in codec.schemas or not codec.schemas[name].is_input]
    if foreign:
        raise UnknownType(f"container file holds {', '.join(foreign)}, not only input events")
    schemas = [codec.schemas[name] for name in names]
    if any(
        schema_fingerprint(branch) != schema_fingerprint(schema.source)
        for branch, schema in zip(branches, schemas, strict=True)
    ):
        fo.seek(start)
        current = [schema.plain for schema in codec.schemas.values() if schema.is_input]
        records = _open(fo, reader_schema=current if isinstance(writer_schema, list) else schemas[0].plain)
    by_name = {schema.full_name: schema for schema in schemas}
    only = schemas[0] if not isinstance(writer_schema, list) else None
    try:
        for item in records:
            schema, record = (by_name[item[0]], item[1]) if only is None else (only, item)
            # fastavro applies the logical types of the file's own schema: turn datetimes into epoch ms.
            for name in schema.timestamp_fields:
                moment = record.get(name)
                if moment is not None:
                    record[name] = (moment - EPOCH) // ONE_MILLISECOND
            yield {"type": schema.type_name, **record}
    except SchemaResolutionError as exc:
        raise IncompatibleSchema(f"container schema cannot be read as the current schemas: {exc}") from exc
    except Exception as exc:  # as below: a damaged block surfaces as assorted exception types
        raise MalformedAvro(f"damaged container file: {type(exc).__name__}: {exc}") from exc


def _open(fo: BinaryIO, reader_schema: Any) -> fastavro.reader:
    try:
        return fastavro.reader(fo, reader_schema=reader_schema, return_record_name=True)
    except Exception as exc:  # fastavro reports a bad header with assorted exception types
        raise MalformedAvro(f"not an Avro container file: {type(exc).__name__}: {exc}") from exc
