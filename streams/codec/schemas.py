"""Load the `.avsc` files of `schemas/` once: layout, parsed forms and fingerprints."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streams.codec.errors import SchemaSetError

NAMESPACE_ROOT = "promise_ledger"
INPUT_DEPARTMENTS = ("marketing", "sales", "fulfilment", "service")
OUTPUT_DEPARTMENT = "alignment"
DEPARTMENTS = (*INPUT_DEPARTMENTS, OUTPUT_DEPARTMENT)
SCHEMAS_DIR_ENV = "PL_SCHEMAS_DIR"

Schema = dict[str, Any]


def default_schemas_dir() -> Path:
    """`$PL_SCHEMAS_DIR`, else the `schemas/` directory of the source checkout."""
    configured = os.environ.get(SCHEMAS_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "schemas"


def layout_files(schemas_dir: Path) -> list[Path]:
    """The current schema of every type: `schemas/<department>/<Type>.avsc` (archived versions excluded)."""
    return sorted(path for department in DEPARTMENTS for path in (schemas_dir / department).glob("*.avsc"))


def without_logical_types(schema: Any) -> Any:
    """A copy of a schema with every `logicalType` removed.

    The codec's dicts carry timestamps as int epoch milliseconds; reading with the underlying `long`
    lets fastavro hand those ints back directly instead of building datetimes we would convert back
    (benchmarks/codec.py measures the difference). The bytes on the wire are identical.
    """
    if isinstance(schema, dict):
        return {key: without_logical_types(value) for key, value in schema.items() if key != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(item) for item in schema]
    return schema


def schema_fingerprint(schema: Mapping[str, Any]) -> str:
    """CRC-64-AVRO fingerprint of the parsing canonical form: equal exactly when the wire form is equal."""
    canonical = to_parsing_canonical_form(parse_schema(dict(schema), _write_hint=False))
    return fingerprint(canonical, "CRC-64-AVRO")


def full_name(schema: Mapping[str, Any]) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


@dataclass(frozen=True)
class RecordSchema:
    """One record schema as the codec uses it."""

    full_name: str
    department: str
    source: Schema  # the JSON of the file, logical types included (container headers, registries)
    plain: Schema = field(repr=False)  # fastavro-parsed, logical types removed (hot path)
    field_names: frozenset[str] = field(repr=False)
    required_fields: frozenset[str] = field(repr=False)  # no default: must be present to encode
    defaults: Mapping[str, Any] = field(repr=False)
    timestamp_fields: tuple[str, ...] = field(repr=False)  # timestamp-millis, alone or in a union with null

    @property
    def type_name(self) -> str:
        return self.full_name.rsplit(".", 1)[1]

    @property
    def is_input(self) -> bool:
        return self.department in INPUT_DEPARTMENTS

    @classmethod
    def from_json(cls, source: Schema) -> RecordSchema:
        if source.get("type") != "record":
            raise SchemaSetError(f"{source.get('name')!r} is not a record schema")
        name = full_name(source)
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != NAMESPACE_ROOT:
            raise SchemaSetError(f"{name}: expected namespace {NAMESPACE_ROOT}.<department>")
        fields = source["fields"]
        return cls(
            full_name=name,
            department=parts[1],
            source=source,
            plain=parse_schema(without_logical_types(source)),
            field_names=frozenset(f["name"] for f in fields),
            required_fields=frozenset(f["name"] for f in fields if "default" not in f),
            defaults={f["name"]: f["default"] for f in fields if "default" in f},
            timestamp_fields=tuple(f["name"] for f in fields if _is_timestamp(f["type"])),
        )


def _is_timestamp(avro_type: Any) -> bool:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    return any(
        isinstance(branch, dict) and branch.get("logicalType") == "timestamp-millis" for branch in branches
    )


def load_layout(schemas_dir: Path) -> dict[str, RecordSchema]:
    """Every current schema by full name, checked against the layout rules."""
    schemas: dict[str, RecordSchema] = {}
    for path in layout_files(schemas_dir):
        try:
            source = json.loads(path.read_text(encoding="utf-8"))
            record = RecordSchema.from_json(source)
        except (ValueError, KeyError, TypeError) as exc:
            raise SchemaSetError(f"{path}: {exc}") from exc
        expected = f"{NAMESPACE_ROOT}.{path.parent.name}.{path.stem}"
        if record.full_name != expected:
            raise SchemaSetError(
                f"{path}: declares {record.full_name}, its place in schemas/ says {expected}"
            )
        schemas[record.full_name] = record
    if not schemas:
        raise SchemaSetError(f"no schemas found under {schemas_dir}")
    return schemas
