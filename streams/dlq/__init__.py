"""Dead letters (``alignment.dlq``): counted, shown and redriven to their source topic after a fix."""

from streams.dlq.letters import (
    UNREADABLE,
    CountRow,
    DeadLetter,
    DeadLetterLog,
    Marker,
    RawRecord,
    Selection,
    count,
    describe,
    marker_of,
    read_all,
    readable,
    safe_json,
)
from streams.dlq.redriving import REDRIVEN_FROM_HEADER, Outgoing, Plan, RedriveTarget, plan, redrive

__all__ = [
    "REDRIVEN_FROM_HEADER",
    "UNREADABLE",
    "CountRow",
    "DeadLetter",
    "DeadLetterLog",
    "Marker",
    "Outgoing",
    "Plan",
    "RawRecord",
    "RedriveTarget",
    "Selection",
    "count",
    "describe",
    "marker_of",
    "plan",
    "read_all",
    "readable",
    "redrive",
    "safe_json",
]
