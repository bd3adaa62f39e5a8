"""What the engine emits: alignment events, their deterministic ids, severities and alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from streams.contract.frozen import fast_init

PROMISE_OPENED = "PROMISE_OPENED"
PROMISE_KEPT = "PROMISE_KEPT"
PROMISE_BROKEN = "PROMISE_BROKEN"
AT_RISK = "AT_RISK"
FULFILLED_LATE = "FULFILLED_LATE"
CONTRADICTION = "CONTRADICTION"
COMPLAINT_ATTRIBUTED = "COMPLAINT_ATTRIBUTED"
STYLE_MISMATCH = "STYLE_MISMATCH"
TONE = "TONE"
RECOVERED = "RECOVERED"

ALIGNMENT_TYPES = (
    PROMISE_OPENED,
    PROMISE_KEPT,
    PROMISE_BROKEN,
    AT_RISK,
    FULFILLED_LATE,
    CONTRADICTION,
    COMPLAINT_ATTRIBUTED,
    STYLE_MISMATCH,
    TONE,
    RECOVERED,
)

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")

#: Severity of a broken promise before customer value is considered, by (kind, reason).
_BASE_SEVERITY = {
    ("DELIVERY", "NOT_DELIVERED"): "HIGH",
    ("DELIVERY", "SHORT"): "MEDIUM",
    ("DELIVERY", "MISSING_FEATURE"): "MEDIUM",
    ("SHIPPING", "NOT_SHIPPED"): "MEDIUM",
    ("REFUND", "NOT_DONE"): "HIGH",
    ("CALLBACK", "NOT_DONE"): "MEDIUM",
    ("FIRST_REPLY", "NO_REPLY"): "LOW",
}
#: A claim the stock cannot back reaches every customer who saw it.
CONTRADICTION_SEVERITY = "HIGH"


def alignment_id(*parts: str | None) -> str:
    """A short stable hash of the parts that make an alignment event what it is (not of its time)."""
    # An absent part counts as empty; most ids have none, and join() then takes the parts as they are.
    joined = "\x1f".join([part or "" for part in parts] if None in parts else parts)  # type: ignore[arg-type]
    return blake2b(joined.encode(), digest_size=10).hexdigest()


def raise_severity(base: str, customer_value: float, one_level_at: float, two_levels_at: float) -> str:
    """Customer value only raises a severity, never lowers it."""
    steps = 2 if customer_value >= two_levels_at else 1 if customer_value >= one_level_at else 0
    return SEVERITIES[min(SEVERITIES.index(base) + steps, len(SEVERITIES) - 1)]


def base_severity(kind: str | None, reason: str | None) -> str:
    return _BASE_SEVERITY.get((kind or "", reason or ""), "MEDIUM")


@fast_init
@dataclass(frozen=True)  # no slots: orjson serialises an instance dict twice as fast as slots
class AlignmentEvent:
    alignment_id: str
    type: str
    customer_id: str | None
    at: int
    promise_id: str | None = None
    department: str | None = None
    kind: str | None = None
    reason: str | None = None
    due_at: int | None = None
    ticket_id: str | None = None
    root_department: str | None = None
    promise_ids: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    claim_id: str | None = None
    campaign_id: str | None = None
    product: str | None = None
    rep_name: str | None = None
    agent_name: str | None = None
    deal_id: str | None = None
    order_id: str | None = None
    delay_s: int | None = None
    severity: str | None = None
    cause_event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The brief's key order; lists copied so the caller may keep or change them."""
        return {
            "alignment_id": self.alignment_id,
            "type": self.type,
            "customer_id": self.customer_id,
            "at": self.at,
            "promise_id": self.promise_id,
            "department": self.department,
            "kind": self.kind,
            "reason": self.reason,
            "due_at": self.due_at,
            "ticket_id": self.ticket_id,
            "root_department": self.root_department,
            "promise_ids": list(self.promise_ids),
            "phrases": list(self.phrases),
            "claim_id": self.claim_id,
            "campaign_id": self.campaign_id,
            "product": self.product,
            "rep_name": self.rep_name,
            "agent_name": self.agent_name,
            "deal_id": self.deal_id,
            "order_id": self.order_id,
            "delay_s": self.delay_s,
            "severity": self.severity,
            "cause_event_id": self.cause_event_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignmentEvent:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    dedup_key: str
    group_key: str
    severity: str
    type: str
    customer_id: str | None
    promise_id: str | None
    department: str | None
    kind: str | None
    reason: str | None
    at: int
    due_at: int | None
    claim_id: str | None
    product: str | None
    rep_name: str | None
    customer_value: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _group_key(event: AlignmentEvent) -> str:
    """One cause, one Slack message: a product's stockout, a rep's book, else a department's kind."""
    if event.type == CONTRADICTION or event.kind == "SHIPPING":
        return f"stockout:{event.product}"
    if event.kind == "DELIVERY" and event.rep_name:
        return f"rep:{event.rep_name}"
    return f"{event.department}:{event.kind}"


def alert_for(event: AlignmentEvent, customer_value: float = 0.0) -> Alert | None:
    """The alert a ``PROMISE_BROKEN`` or ``CONTRADICTION`` event raises; None for every other type."""
    if event.type == PROMISE_BROKEN:
        dedup_key = event.promise_id or event.alignment_id
    elif event.type == CONTRADICTION:
        dedup_key = f"contradiction:{event.claim_id}:{event.product}"
    else:
        return None
    return Alert(
        alert_id=event.alignment_id,
        dedup_key=dedup_key,
        group_key=_group_key(event),
        severity=event.severity or base_severity(event.kind, event.reason),
        type=event.type,
        customer_id=event.customer_id,
        promise_id=event.promise_id,
        department=event.department,
        kind=event.kind,
        reason=event.reason,
        at=event.at,
        due_at=event.due_at,
        claim_id=event.claim_id,
        product=event.product,
        rep_name=event.rep_name,
        customer_value=float(customer_value),
    )
