"""Every .avsc in schemas/ parses with both Avro libraries and follows the layout and field rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest

from streams.codec.schemas import layout_files
from tests.codec_helpers import SCHEMAS

FILES = layout_files(SCHEMAS)
COMMON_FIELDS = ["event_id", "customer_id", "occurred_at", "source"]
NOT_TIED_TO_A_CUSTOMER = {"ClaimPublished", "ClaimWithdrawn", "StockChanged"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_one_schema_per_event_type_and_output() -> None:
    by_department: dict[str, set[str]] = {}
    for path in FILES:
        by_department.setdefault(path.parent.name, set()).add(path.stem)
    assert by_department == {
        "marketing": {"ClaimPublished", "CustomerExposed", "ClaimWithdrawn"},
        "sales": {"CommitmentMade", "CommitmentApproved", "CommitmentAmended"},
        "fulfilment": {
            "OrderPlaced",
            "OrderShipped",
            "OrderDelivered",
            "StockChanged",
            "CallbackMade",
            "RefundIssued",
        },
        "service": {
            "TicketOpened",
            "AgentReplied",
            "ServicePromiseMade",
            "TicketResolved",
            "SatisfactionRated",
        },
        "alignment": {"AlignmentEvent", "Alert", "DeadLetter"},
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_schema_parses_with_avro_and_fastavro(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert avro.schema.parse(text).fullname == f"promise_ledger.{path.parent.name}.{path.stem}"
    fastavro.parse_schema(json.loads(text))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_schema_name_namespace_and_docs_follow_the_layout(path: Path) -> None:
    schema = load(path)
    assert schema["type"] == "record"
    assert schema["name"] == path.stem
    assert schema["namespace"] == f"promise_ledger.{path.parent.name}"
    assert schema["doc"].strip()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_optional_fields_default_to_null_and_arrays_to_empty(path: Path) -> None:
    for field in load(path)["fields"]:
        field_type = field["type"]
        if isinstance(field_type, list):
            assert field_type[0] == "null" and len(field_type) == 2, field["name"]
            assert "default" in field and field["default"] is None, field["name"]
        if isinstance(field_type, dict) and field_type["type"] == "array":
            assert field["default"] == [], field["name"]
        if isinstance(field_type, dict) and field_type["type"] == "enum":
            # No enum default: an unknown symbol must stay detectable as invalid (schemas/README.md).
            assert "default" not in field_type, field["name"]


@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name != "alignment"], ids=lambda p: p.stem)
def test_input_events_start_with_the_common_fields(path: Path) -> None:
    fields = load(path)["fields"]
    assert [f["name"] for f in fields[:4]] == COMMON_FIELDS
    customer_id = fields[1]["type"]
    assert customer_id == (["null", "string"] if path.stem in NOT_TIED_TO_A_CUSTOMER else "string")
    assert fields[2]["type"] == {"type": "long", "logicalType": "timestamp-millis"}


def test_every_timestamp_field_is_timestamp_millis() -> None:
    timestamp_names = {"occurred_at", "deliver_by", "due_at", "valid_until", "at", "dead_lettered_at"}
    seen = set()
    for path in FILES:
        for field in load(path)["fields"]:
            if field["name"] in timestamp_names:
                seen.add(field["name"])
                branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
                assert {"type": "long", "logicalType": "timestamp-millis"} in branches, (
                    path.stem,
                    field["name"],
                )
    assert seen == timestamp_names
