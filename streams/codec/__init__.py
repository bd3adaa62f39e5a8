"""Avro on the wire: schemas from `schemas/`, Confluent framing, fastavro on the hot path.

`encode`/`decode` use one codec built on first use from `schemas/` and `schemas/ids.json`; build an
`AvroCodec` yourself to use another directory or a schema registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from streams.codec.container import read_container, write_container
from streams.codec.errors import (
    CodecError,
    DecodeError,
    EncodeError,
    IncompatibleSchema,
    MalformedAvro,
    NotAvro,
    SchemaSetError,
    UnknownSchemaId,
    UnknownType,
)
from streams.codec.registry import FileSchemaRegistry, SchemaRegistry
from streams.codec.wire import AvroCodec

__all__ = [
    "AvroCodec",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "FileSchemaRegistry",
    "IncompatibleSchema",
    "MalformedAvro",
    "NotAvro",
    "SchemaRegistry",
    "SchemaSetError",
    "UnknownSchemaId",
    "UnknownType",
    "decode",
    "decode_alert",
    "decode_alignment",
    "decode_dead_letter",
    "default_codec",
    "encode",
    "encode_alert",
    "encode_alignment",
    "encode_dead_letter",
    "read_container",
    "write_container",
]


@cache
def default_codec() -> AvroCodec:
    return AvroCodec()


def encode(event: Mapping[str, Any]) -> bytes:
    return default_codec().encode(event)


def decode(value: bytes) -> dict[str, Any]:
    return default_codec().decode(value)


def encode_alignment(alignment_event: Mapping[str, Any]) -> bytes:
    return default_codec().encode_alignment(alignment_event)


def encode_alert(alert: Mapping[str, Any]) -> bytes:
    return default_codec().encode_alert(alert)


def encode_dead_letter(dead_letter: Mapping[str, Any]) -> bytes:
    return default_codec().encode_dead_letter(dead_letter)


def decode_alignment(value: bytes) -> dict[str, Any]:
    return default_codec().decode_alignment(value)


def decode_alert(value: bytes) -> dict[str, Any]:
    return default_codec().decode_alert(value)


def decode_dead_letter(value: bytes) -> dict[str, Any]:
    return default_codec().decode_dead_letter(value)
