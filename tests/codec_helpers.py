"""Test helpers: JSON-lines form (SPEC §3) to decoded-event dicts and back, a record through either
input path, and an evolved copy of schemas/."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams import codec
from streams.codec.schemas import schema_fingerprint
from streams.contract import (
    TIMESTAMP_FIELDS,
    InputEvent,
    InvalidEvent,
    event_from_json_line,
    ms_to_iso,
    parse_event,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
ALL_TYPES = REPO / "tests" / "fixtures" / "events" / "all_types.jsonl"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEPARTMENT_OF = {
    path.stem: path.parent.name for path in SCHEMAS.glob("*/*.avsc") if path.parent.name != "alignment"
}


def schema_json(type_name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / DEPARTMENT_OF[type_name] / f"{type_name}.avsc").read_text(encoding="utf-8"))


def _is_timestamp(avro_type: Any) -> bool:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    return any(isinstance(b, dict) and b.get("logicalType") == "timestamp-millis" for b in branches)


def iso_to_ms(text: str) -> int:
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(milliseconds=1)


def decoded_form(line: dict[str, Any]) -> dict[str, Any]:
    """A JSON-lines object as the decoded-event dict of the brief: every field, timestamps in ms."""
    decoded: dict[str, Any] = {"type": line["type"]}
    for field in schema_json(line["type"])["fields"]:
        name = field["name"]
        value = line.get(name, field.get("default"))
        decoded[name] = iso_to_ms(value) if value is not None and _is_timestamp(field["type"]) else value
    return decoded


def fixture_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in ALL_TYPES.read_text(encoding="utf-8").splitlines() if line.strip()]


def evolved_copy(tmp_path: Path) -> Path:
    """A copy of schemas/ where CommitmentMade gained an optional field `region`."""
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    evolve_commitment_made(schemas)
    return schemas


def evolve_commitment_made(schemas: Path) -> None:
    """Add an optional `region` to CommitmentMade by the procedure of schemas/README.md."""
    ids_doc = json.loads((schemas / "ids.json").read_text())
    old_id = next(int(k) for k, e in ids_doc["schemas"].items() if e["file"] == "sales/CommitmentMade.avsc")
    archived = f"archive/promise_ledger.sales.CommitmentMade/{old_id}.avsc"
    (schemas / archived).parent.mkdir(parents=True)
    shutil.copy(schemas / "sales/CommitmentMade.avsc", schemas / archived)
    ids_doc["schemas"][str(old_id)]["file"] = archived
    newer = schema_json("CommitmentMade")
    newer["fields"].append({"name": "region", "type": ["null", "string"], "default": None})
    (schemas / "sales/CommitmentMade.avsc").write_text(json.dumps(newer, indent=2))
    new_id = max(int(key) for key in ids_doc["schemas"]) + 1
    ids_doc["schemas"][str(new_id)] = {
        "name": "promise_ledger.sales.CommitmentMade",
        "file": "sales/CommitmentMade.avsc",
        "fingerprint": schema_fingerprint(newer),
    }
    (schemas / "ids.json").write_text(json.dumps(ids_doc, indent=2))


def json_line_of(decoded: dict[str, Any]) -> str:
    """A decoded-event dict as a producer would write its JSON line: ISO timestamps (epoch ms where
    ISO-8601 has no year for them), absent optional fields left out, and the stdlib's ``json``, which
    writes infinities and NaN (orjson would write null)."""
    line: dict[str, Any] = {}
    for name, value in decoded.items():
        if value is None:
            continue
        representable = type(value) is int and -62_135_596_800_000 <= value < 253_402_300_800_000
        line[name] = ms_to_iso(value) if name in TIMESTAMP_FIELDS and representable else value
    return json.dumps(line)


def through_json_line(decoded: dict[str, Any]) -> InputEvent | str:
    """The event the JSON-lines path makes of a record, or its reason for rejecting it."""
    try:
        return event_from_json_line(json_line_of(decoded))
    except InvalidEvent as error:
        return str(error)


def through_avro(decoded: dict[str, Any]) -> InputEvent | str:
    """The event the worker's path (codec, then contract) makes of a record, or the reason it is
    rejected; a value the Avro schema cannot hold is refused by the encoder ("codec: ...")."""
    try:
        value = codec.encode(decoded)
    except codec.EncodeError as error:
        return f"codec: {error}"
    except OverflowError as error:  # fastavro's writer on an int past the largest double (not an EncodeError)
        return f"codec: {error}"
    try:
        return parse_event(codec.decode(value))
    except InvalidEvent as error:
        return str(error)
