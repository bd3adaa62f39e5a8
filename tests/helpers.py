"""Shared helpers for engine tests: run fixtures and project alignment events to what a rule decides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.contract import event_from_json_line, iso_to_ms
from streams.engine import AlignmentEvent, EngineConfig, PromiseEngine

FIXTURES = Path(__file__).parent / "fixtures" / "engine"


def ms(text: str) -> int:
    """``03-10T00:00`` (2026, UTC) or a full ISO timestamp -> epoch ms."""
    return iso_to_ms(text if text.startswith("20") else f"2026-{text}:00Z")


def load_events(name: str) -> list[Any]:
    with open(FIXTURES / name, "rb") as handle:
        return [event_from_json_line(line) for line in handle if line.strip()]


def run(
    events: list[Any], until: str | None = None, config: EngineConfig | None = None
) -> list[AlignmentEvent]:
    engine = PromiseEngine(config)
    out: list[AlignmentEvent] = []
    for event in events:
        out.extend(engine.process(event))
    if until is not None:
        out.extend(engine.advance_to(ms(until)))
    out.extend(engine.drain())
    return out


def run_fixture(
    name: str, until: str | None = None, config: EngineConfig | None = None
) -> list[AlignmentEvent]:
    return run(load_events(name), until, config)


def outline(
    events: list[AlignmentEvent], customer_id: str | None
) -> list[tuple[str, str | None, str | None]]:
    """(type, promise or ticket or claim id, reason) of one customer's events, in output order."""
    return [
        (event.type, event.promise_id or event.ticket_id or event.claim_id, event.reason)
        for event in events
        if event.customer_id == customer_id
    ]


def only(events: list[AlignmentEvent], type_name: str, key: str) -> AlignmentEvent:
    found = [e for e in events if e.type == type_name and key in (e.promise_id, e.ticket_id, e.claim_id)]
    assert len(found) == 1, f"expected one {type_name} for {key}, got {found}"
    return found[0]
