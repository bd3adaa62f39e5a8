"""One Slack message (Block Kit) per group of alerts that share a cause.

Rendering never raises, whatever an alert holds (any value from Kafka, however large or absurd): a time
outside the calendar is shown as its raw milliseconds, and every text fits Slack's limits (SPEC §6),
cut with "…" after escaping; the full text stays in ClickHouse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.slack.text import code, cut, escape, plain

Alert = Mapping[str, Any]

SEVERITY_ORDER = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
_SEVERITY_ICON = {
    "LOW": ":large_blue_circle:",
    "MEDIUM": ":large_yellow_circle:",
    "HIGH": ":large_orange_circle:",
    "CRITICAL": ":red_circle:",
}
# Slack's limits (SPEC §6): characters per text object, per section field, blocks per message.
MAX_TEXT = 3000
MAX_FIELD = 2000
MAX_BLOCKS = 50
# The rest of a big group is counted, and lives in ClickHouse: title, two blocks per alert, the count.
MAX_DETAILED_ALERTS = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class AlertGroup:
    """Alerts of one cause (``group_key``), sent as one message."""

    group_key: str
    alerts: list[Alert] = field(default_factory=list)

    @property
    def severity(self) -> str:
        severities = (alert.get("severity") for alert in self.alerts)
        ranks = [SEVERITY_ORDER.index(severity) for severity in severities if severity in SEVERITY_ORDER]
        return SEVERITY_ORDER[max(ranks)] if ranks else "LOW"

    @property
    def dedup_keys(self) -> list[str]:
        return [alert["dedup_key"] for alert in self.alerts]


def _when(ms: object) -> str:
    if ms is None:
        return "—"
    try:
        return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M UTC")  # type: ignore[arg-type]
    except (OverflowError, ValueError, TypeError):  # past year 9999, NaN, not a number
        return f"{escape(ms)} ms since 1970-01-01 UTC"


def _title(group: AlertGroup) -> str:
    count = len(group.alerts)
    first = group.alerts[0] if group.alerts else {}
    if first.get("type") == "CONTRADICTION":
        noun = "contradiction" if count == 1 else "contradictions"
    else:
        noun = "broken promise" if count == 1 else "broken promises"
    return f"{count} {noun} · {plain(group.group_key)}"


def _alert_section(alert: Alert) -> dict[str, Any]:
    if alert.get("type") == "CONTRADICTION":
        facts = [
            ("Contradiction", f"claim {code(alert.get('claim_id'))} on {escape(alert.get('product'))}"),
            ("Department", escape(alert.get("department") or "MARKETING")),
            ("Reason", escape(alert.get("reason") or "stock cannot back the claim")),
            ("Severity", escape(alert.get("severity"))),
        ]
    else:
        facts = [
            ("Customer", code(alert.get("customer_id"))),
            ("Promise", code(alert.get("promise_id"))),
            ("Department", f"{escape(alert.get('department'))} · {escape(alert.get('kind'))}"),
            ("Due", _when(alert.get("due_at"))),
            ("Reason", escape(alert.get("reason"))),
            ("Severity", escape(alert.get("severity"))),
        ]
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": cut(f"*{label}*\n{value}", MAX_FIELD), "verbatim": True}
            for label, value in facts
        ],
    }


def _explain_hint(alert: Alert) -> str | None:
    """The command that shows this alert's story; a contradiction concerns no customer, so none."""
    subject = alert.get("promise_id") or alert.get("customer_id")
    return f"promise-ledger explain {plain(subject)}" if subject else None


def _context(text: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut(text, MAX_TEXT), "verbatim": True}],
    }


def render(group: AlertGroup) -> dict[str, Any]:
    """The webhook payload: a plain-text fallback plus Block Kit blocks; every event value escaped."""
    title = escape(_title(group))
    icon = _SEVERITY_ICON.get(group.severity, "")
    heading = f"{icon} *{cut(title, MAX_TEXT - len(icon) - 3)}*"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": heading, "verbatim": True}}
    ]
    for alert in group.alerts[:MAX_DETAILED_ALERTS]:
        blocks.append(_alert_section(alert))
        hint = _explain_hint(alert)
        if hint:
            blocks.append(_context(code(hint)))
    hidden = len(group.alerts) - MAX_DETAILED_ALERTS
    if hidden > 0:
        blocks.append(
            _context(
                f"…and {hidden} more of this cause "
                f"(ClickHouse table `alerts`, group_key {code(group.group_key)})"
            )
        )
    return {"text": cut(title, MAX_TEXT), "blocks": blocks, "unfurl_links": False, "unfurl_media": False}
