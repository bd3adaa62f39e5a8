"""A story as people read it (rich) and as machines read it (one JSON document)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streams.explain.story import ALERT, INPUT, LEDGER, Entry, PromiseStory, Story, duration, when

_STATUS_STYLE = {"KEPT": "green", "BROKEN": "bold red", "AT_RISK": "yellow", "OPEN": "cyan"}
_ORIGIN_STYLE = {INPUT: "dim", LEDGER: "", ALERT: "magenta"}
_WHAT_STYLE = {"broken": "red", "at risk": "yellow", "kept": "green", "came late": "red", "alert": "magenta"}


def _terms_line(promise: PromiseStory) -> str:
    terms = promise.terms
    parts = []
    if "quantity" in terms:
        features = terms.get("features") or []
        what = f"{terms['quantity']} × {terms['product']}" + (
            f" with {', '.join(features)}" if features else ""
        )
        parts.append(what)
        if terms.get("unit_price") is not None:
            parts.append(f"at {terms['unit_price']:.2f}")
    elif terms.get("product"):
        parts.append(str(terms["product"]))
    parts.append(f"due {when(promise.due_at)}")
    for label, name in (
        ("rep", "rep_name"),
        ("deal", "deal_id"),
        ("order", "order_id"),
        ("ticket", "ticket_id"),
        ("claim", "claim_id"),
        ("campaign", "campaign_id"),
    ):
        if terms.get(name):
            parts.append(f"{label} {terms[name]}")
    return " · ".join(parts)


def _timeline(entries: list[Entry], title: str | Text, caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left", expand=False)
    table.add_column("when", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for entry in entries:
        style = _ORIGIN_STYLE.get(entry.origin, "")
        table.add_row(
            when(entry.at),
            Text(entry.what, style=_WHAT_STYLE.get(entry.what, style)),
            Text(entry.detail, style=style),
        )
    return table


def _outcome(promise: PromiseStory) -> Text:
    status = promise.status
    text = Text(status, style=_STATUS_STYLE.get(status, ""))
    if promise.reason:
        text.append(f" ({promise.reason})")
    if promise.ended_at is not None:
        text.append(f" at {when(promise.ended_at)}")
    if promise.late_by_s is not None:
        text.append(f", fulfilled {duration(promise.late_by_s)} late")
    return text


def story_renderable(story: Story) -> Group:
    """Header, then one timeline per promise, per complaint, and for anything else about the customer."""
    broken = sum(1 for p in story.promises if p.status == "BROKEN")
    roots = sorted({c.root_department or "UNATTRIBUTED" for c in story.complaints})
    header = Text.assemble(
        ("customer ", "bold"),
        (story.customer_id, "bold cyan"),
        f"  ·  {len(story.promises)} promise(s), {broken} broken  ·  {len(story.complaints)} complaint(s)",
        f" (root: {', '.join(roots)})" if roots else "",
        f"  ·  {story.alerts} alert(s)  ·  from {story.source}",
    )
    if story.subject != story.customer_id:
        header.append(f"\n{story.subject} belongs to this customer")
    parts: list[Any] = [Panel(header, expand=False)]
    for promise in story.promises:
        title = Text.assemble(
            ("promise ", "bold"),
            (promise.promise_id, "bold"),
            f"  {promise.department or '?'} · {promise.kind or '?'}  →  ",
            _outcome(promise),
        )
        parts.append(_timeline(promise.timeline, title, _terms_line(promise)))
    for complaint in story.complaints:
        traced = ", ".join(complaint.promise_ids) or "no promise"
        title = Text.assemble(
            ("complaint ", "bold"),
            (complaint.ticket_id, "bold"),
            f"  {complaint.category or ''}  ·  root department ",
            (complaint.root_department or "UNATTRIBUTED", "bold"),
            f"  ·  traced to {traced}",
        )
        parts.append(_timeline(complaint.timeline, title))
    if story.other:
        parts.append(_timeline(story.other, Text("everything else about the customer", style="bold")))
    return Group(*parts)
