"""Confluent-framed Avro: magic byte 0, 4-byte big-endian schema id, schemaless Avro binary (fastavro)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError, validate

from streams.codec.errors import (
    EncodeError,
    IncompatibleSchema,
    MalformedAvro,
    NotAvro,
    UnknownType,
)
from streams.codec.registry import FileSchemaRegistry, SchemaRegistry
from streams.codec.schemas import (
    NAMESPACE_ROOT,
    OUTPUT_DEPARTMENT,
    RecordSchema,
    default_schemas_dir,
    full_name,
    load_layout,
    schema_fingerprint,
    without_logical_types,
)

MAGIC_BYTE = 0
HEADER = struct.Struct(">BI")
ALIGNMENT_EVENT = f"{NAMESPACE_ROOT}.{OUTPUT_DEPARTMENT}.AlignmentEvent"
ALERT = f"{NAMESPACE_ROOT}.{OUTPUT_DEPARTMENT}.Alert"
DEAD_LETTER = f"{NAMESPACE_ROOT}.{OUTPUT_DEPARTMENT}.DeadLetter"
# The input event's type is its schema's name, so the dict's "type" key is not a field of the record.
INPUT_ONLY_KEYS = frozenset({"type"})
NO_EXTRA_KEYS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Writer:
    schema: RecordSchema
    header: bytes


@dataclass(frozen=True)
class _Reader:
    """How to read the records framed with one schema id."""

    full_name: str
    current: RecordSchema | None  # None: a schema this codec has no current version of
    writer: Any  # fastavro-parsed writer schema without logical types
    resolve_into: Any  # the current version to resolve into, or None when the writer is the current version


class AvroCodec:
    """Encodes dicts to Confluent-framed Avro and back; builds every parsed schema once."""

    def __init__(self, schemas_dir: Path | None = None, registry: SchemaRegistry | None = None) -> None:
        directory = schemas_dir or default_schemas_dir()
        self.schemas: dict[str, RecordSchema] = load_layout(directory)
        self._registry = registry or FileSchemaRegistry(directory)
        self._writers = {
            name: _Writer(schema, HEADER.pack(MAGIC_BYTE, self._registry.id_for(name, schema.source)))
            for name, schema in self.schemas.items()
        }
        self._inputs = {
            schema.type_name: self._writers[name] for name, schema in self.schemas.items() if schema.is_input
        }
        self._readers: dict[int, _Reader] = {}

    @property
    def input_types(self) -> frozenset[str]:
        return frozenset(self._inputs)

    def schema_id(self, name: str) -> int:
        """The id this codec frames new records of `name` (a full name) with."""
        return int(HEADER.unpack(self._writers[name].header)[1])

    # -- encoding ---------------------------------------------------------------------------------------

    def input_record(self, event: Mapping[str, Any]) -> tuple[RecordSchema, Mapping[str, Any]]:
        """The schema an input event dict belongs to and the record to write; raises `EncodeError`."""
        type_name = event.get("type")
        writer = self._inputs.get(type_name) if isinstance(type_name, str) else None
        if writer is None:
            raise EncodeError(f"'type' is {type_name!r}, not one of the input event types")
        return writer.schema, _checked(writer.schema, event, INPUT_ONLY_KEYS)

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """An input event dict (its "type" names the schema) as Confluent-framed Avro."""
        schema, record = self.input_record(event)
        return self._write(self._inputs[schema.type_name], record)

    def encode_alignment(self, alignment_event: Mapping[str, Any]) -> bytes:
        return self._encode_output(ALIGNMENT_EVENT, alignment_event)

    def encode_alert(self, alert: Mapping[str, Any]) -> bytes:
        return self._encode_output(ALERT, alert)

    def encode_dead_letter(self, dead_letter: Mapping[str, Any]) -> bytes:
        return self._encode_output(DEAD_LETTER, dead_letter)

    def _encode_output(self, name: str, record: Mapping[str, Any]) -> bytes:
        writer = self._writers[name]
        return self._write(writer, _checked(writer.schema, record, NO_EXTRA_KEYS))

    @staticmethod
    def _write(writer: _Writer, record: Mapping[str, Any]) -> bytes:
        buffer = BytesIO()
        buffer.write(writer.header)
        schemaless_writer(buffer, writer.schema.plain, record)
        return buffer.getvalue()

    # -- decoding ---------------------------------------------------------------------------------------

    def decode(self, value: bytes) -> dict[str, Any]:
        """A framed input event as a decoded-event dict: "type" added, timestamps as int epoch ms.

        Raises a `DecodeError` subclass whose `reason` is the dead-letter reason code.
        """
        reader, record = self._read(value)
        if reader.current is None or not reader.current.is_input:
            raise UnknownType(f"schema {reader.full_name} is not an input event")
        return {"type": reader.current.type_name, **record}

    def decode_alignment(self, value: bytes) -> dict[str, Any]:
        return self._decode_output(ALIGNMENT_EVENT, value)

    def decode_alert(self, value: bytes) -> dict[str, Any]:
        return self._decode_output(ALERT, value)

    def decode_dead_letter(self, value: bytes) -> dict[str, Any]:
        return self._decode_output(DEAD_LETTER, value)

    def _decode_output(self, name: str, value: bytes) -> dict[str, Any]:
        reader, record = self._read(value)
        if reader.full_name != name:
            raise UnknownType(f"schema {reader.full_name} is not {name}")
        return record

    def _read(self, value: bytes) -> tuple[_Reader, dict[str, Any]]:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise NotAvro(f"value is {type(value).__name__}, not bytes")
        if len(value) < HEADER.size:
            raise NotAvro(f"{len(value)} bytes, shorter than the {HEADER.size}-byte Confluent header")
        magic, schema_id = HEADER.unpack_from(value)
        if magic != MAGIC_BYTE:
            raise NotAvro(f"first byte is {magic:#04x}, not the Confluent magic byte 0x00")
        reader = self._readers.get(schema_id) or self._load_reader(schema_id)
        body = BytesIO(value)
        body.seek(HEADER.size)
        try:
            record = schemaless_reader(body, reader.writer, reader.resolve_into)
        except SchemaResolutionError as exc:
            raise IncompatibleSchema(
                f"schema id {schema_id} cannot be read as the current {reader.full_name}: {exc}"
            ) from exc
        # fastavro reports garbage as whatever its reader trips over (EOFError, UnicodeDecodeError,
        # IndexError, ValueError, ...); all of them mean the same thing here.
        except Exception as exc:
            raise MalformedAvro(
                f"body does not decode as {reader.full_name} (id {schema_id}): {type(exc).__name__}: {exc}"
            ) from exc
        trailing = len(value) - body.tell()
        if trailing:
            raise MalformedAvro(
                f"{trailing} bytes left over after a {reader.full_name} record (id {schema_id})"
            )
        if not isinstance(record, dict):
            raise MalformedAvro(f"schema id {schema_id} does not name a record schema")
        return reader, record

    def _load_reader(self, schema_id: int) -> _Reader:
        writer_schema = self._registry.schema_for(schema_id)
        name = full_name(writer_schema)
        current = self.schemas.get(name)
        try:
            if current is not None and schema_fingerprint(writer_schema) == schema_fingerprint(
                current.source
            ):
                reader = _Reader(name, current, current.plain, None)
            else:
                writer = parse_schema(without_logical_types(writer_schema))
                reader = _Reader(name, current, writer, current.plain if current else None)
        except Exception as exc:  # a registry can hold any schema text; none of it may escape as a crash
            raise IncompatibleSchema(f"schema id {schema_id} ({name}) does not parse: {exc}") from exc
        self._readers[schema_id] = reader
        return reader


def _checked(
    schema: RecordSchema, record: Mapping[str, Any], ignored_keys: frozenset[str]
) -> Mapping[str, Any]:
    """`record` with defaults filled in, after checking it fits `schema`; raises `EncodeError`."""
    keys = record.keys()
    unknown = keys - schema.field_names - ignored_keys
    if unknown:
        raise EncodeError(f"{schema.type_name}: unknown field(s) {', '.join(sorted(unknown))}")
    missing = schema.field_names - keys
    if missing:
        required = missing & schema.required_fields
        if required:
            raise EncodeError(f"{schema.type_name}: missing required field(s) {', '.join(sorted(required))}")
        record = {**{name: schema.defaults[name] for name in missing}, **record}
    # raise_errors=True builds (and JSON-dumps) an exception for every union branch it rejects, even
    # when the record is valid; ask for a verdict first and for the reasons only when it fails.
    if validate(record, schema.plain, raise_errors=False):
        return record
    try:
        validate(record, schema.plain, raise_errors=True)
    except ValidationError as exc:
        raise EncodeError(f"{schema.type_name}: {'; '.join(str(error) for error in exc.errors)}") from None
    raise EncodeError(f"{schema.type_name}: does not fit its schema")
