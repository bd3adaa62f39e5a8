"""Errors the codec raises. Decode failures carry a machine reason code for the dead-letter topic."""

from __future__ import annotations


class CodecError(Exception):
    """Base of every codec error."""


class DecodeError(CodecError):
    """A record value that cannot become a decoded event; `reason` is the dead-letter reason code."""

    reason = "undecodable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class NotAvro(DecodeError):
    """No Confluent framing: empty, shorter than the 5-byte header, or the magic byte is not 0."""

    reason = "not_avro"


class UnknownSchemaId(DecodeError):
    """The framing names a schema id neither the ids file nor the registry knows."""

    reason = "unknown_schema_id"


class MalformedAvro(DecodeError):
    """The Avro body does not match the schema its id names (truncated, garbage, trailing bytes)."""

    reason = "malformed_avro"


class UnknownType(DecodeError):
    """The schema is known but is not one the caller asked for (e.g. an Alert on an input topic)."""

    reason = "unknown_type"


class IncompatibleSchema(DecodeError):
    """The writer's schema version cannot be resolved into the current version of that type."""

    reason = "incompatible_schema"


class EncodeError(CodecError, ValueError):
    """A dict that does not fit its schema; the message names the offending fields."""


class SchemaSetError(CodecError):
    """The files in `schemas/` are inconsistent (layout, ids file, fingerprints); raised at load time."""
