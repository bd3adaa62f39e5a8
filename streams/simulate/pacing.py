"""When each simulated event is published, for a company that lives at ``speed`` times wall time.

Source systems publish late: a producer's batch, a retry, a nightly export. The worker absorbs that
with its grace period (SPEC §5), so the simulator delays each customer event by a random jitter below
it. A customer's own events keep their order (one system after another, never a reply before its
ticket); catalog facts (claims, stock) are published on time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

Event = dict[str, Any]


def publication_schedule(
    events: Sequence[Event], speed: float, jitter_ms: int, seed: int
) -> list[tuple[float, Event]]:
    """(seconds after the story's first event, event) in publication order.

    An event is published when the story's clock, running ``speed`` times faster than wall time,
    reaches its ``occurred_at`` plus its jitter (never before the customer's previous event).
    """
    if not events:
        return []
    rng = random.Random(seed)
    published_at_by_customer: dict[str, int] = {}
    due: list[tuple[int, int, Event]] = []
    for number, event in enumerate(events):
        at = int(event["occurred_at"])
        customer = event.get("customer_id")
        if customer:
            at = max(at + rng.randint(0, jitter_ms), published_at_by_customer.get(customer, at))
            published_at_by_customer[customer] = at
        due.append((at, number, event))
    due.sort(key=lambda entry: entry[:2])
    first = min(int(event["occurred_at"]) for event in events)
    return [((at - first) / 1000 / speed, event) for at, _, event in due]


def story_shift_to_end_now(schedule: list[tuple[float, Event]], speed: float, now_ms: int) -> int:
    """How far to move the story in time so its last publication is due at wall time when it is sent,
    and no event is ever published before it occurred (for speed >= 1)."""
    if not schedule:
        return 0
    first_ms = min(int(event["occurred_at"]) for _, event in schedule)
    last_offset_s, _ = schedule[-1]
    story_end_ms = first_ms + last_offset_s * speed * 1000
    wall_end_ms = now_ms + last_offset_s * 1000
    return round(wall_end_ms - story_end_ms)
