"""Where schema ids come from: a Confluent-compatible registry, or `schemas/ids.json`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from streams.codec.errors import SchemaSetError, UnknownSchemaId
from streams.codec.schemas import Schema, full_name, layout_files, schema_fingerprint

IDS_FILE = "ids.json"


class SchemaRegistry(Protocol):
    """The two questions the codec asks; a Confluent-compatible HTTP registry answers them too."""

    def id_for(self, name: str, schema: Mapping[str, Any]) -> int:
        """The id to frame new records written with `schema` (the current version of `name`)."""
        ...

    def schema_for(self, schema_id: int) -> Schema:
        """The writer schema an id names; raises `UnknownSchemaId` for an id it does not know."""
        ...


class FileSchemaRegistry:
    """Ids from `schemas/ids.json`, checked at load so a stale or edited entry fails at start-up.

    Each entry maps an id to a schema file and the fingerprint of its wire form. The current version
    of a type is the entry whose file is `<department>/<Type>.avsc`; older versions point at their
    archived copies, so records framed with an old id stay readable.
    """

    def __init__(self, schemas_dir: Path) -> None:
        self._schemas_dir = schemas_dir
        ids_path = schemas_dir / IDS_FILE
        try:
            entries = json.loads(ids_path.read_text(encoding="utf-8"))["schemas"]
        except (OSError, ValueError, KeyError) as exc:
            raise SchemaSetError(f"{ids_path}: {exc}") from exc
        self._by_id: dict[int, Schema] = {}
        self._current_id: dict[str, int] = {}
        layout = {path.relative_to(schemas_dir).as_posix() for path in layout_files(schemas_dir)}
        for key, entry in entries.items():
            schema_id = int(key)
            schema = self._load_entry(schema_id, entry)
            self._by_id[schema_id] = schema
            if entry["file"] in layout:
                if entry["name"] in self._current_id:
                    raise SchemaSetError(f"{ids_path}: two ids for the current version of {entry['name']}")
                self._current_id[entry["name"]] = schema_id
        missing = sorted(path for path in layout if not any(e["file"] == path for e in entries.values()))
        if missing:
            raise SchemaSetError(f"{ids_path}: no id for {', '.join(missing)}")

    def _load_entry(self, schema_id: int, entry: Mapping[str, str]) -> Schema:
        path = self._schemas_dir / entry["file"]
        try:
            schema: Schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaSetError(f"id {schema_id}: {exc}") from exc
        if full_name(schema) != entry["name"]:
            raise SchemaSetError(f"id {schema_id}: {path} declares {full_name(schema)}, not {entry['name']}")
        if schema_fingerprint(schema) != entry["fingerprint"]:
            raise SchemaSetError(
                f"id {schema_id}: the wire form of {path} changed since the id was assigned; "
                "archive the old version and give the new one a new id (schemas/README.md)"
            )
        return schema

    def id_for(self, name: str, schema: Mapping[str, Any]) -> int:
        schema_id = self._current_id.get(name)
        if schema_id is None:
            raise SchemaSetError(f"no id for {name} in {self._schemas_dir / IDS_FILE}")
        if schema_fingerprint(schema) != schema_fingerprint(self._by_id[schema_id]):
            raise SchemaSetError(f"{name}: the schema to write is not the one id {schema_id} names")
        return schema_id

    def schema_for(self, schema_id: int) -> Schema:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaId(f"schema id {schema_id} is not in {IDS_FILE}") from None
