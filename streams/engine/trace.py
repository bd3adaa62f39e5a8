"""What an input event did to a promise, as the engine saw it: the facts `explain` tells a story from.

An optional observer of `PromiseEngine` (``PromiseEngine(config, trace=callback)``). The alignment events
say how each promise stands; the trace adds the input events that changed a promise without ending it
(a partial delivery, an approval, an amendment) and what each counted for. It is the engine's own view,
so no other module needs a copy of the matching rules. Off by default: the worker never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: a delivery or shipment added to the promise's fulfilled quantity (see ``state`` for when)
COUNTED = "COUNTED"
#: a first reply, a callback made or a refund issued: the promise's fulfilment
FULFILMENT = "FULFILMENT"
APPROVAL = "APPROVED"
#: an amendment the customer was told of: ``due_at`` and ``quantity`` are the new terms
AMENDED = "AMENDED"
#: an amendment the customer was not told of: the original terms still hold
AMENDED_UNINFORMED = "AMENDED_UNINFORMED"
#: the event concerned the promise but changed nothing (it had ended, or was already approved)
UNCHANGED = "UNCHANGED"

TRACE_EFFECTS = (COUNTED, FULFILMENT, APPROVAL, AMENDED, AMENDED_UNINFORMED, UNCHANGED)

#: a promise's state as the trace names it (`streams.engine.ledger` keeps it as a small int)
STATE_NAMES = ("OPEN", "KEPT", "BROKEN")


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One input event's effect on one promise.

    ``state`` is the promise's state when the event reached it, after every deadline before the event's
    time fired: a delivery counted while ``OPEN`` counts toward keeping it, one counted while ``BROKEN``
    came late. ``due_at``, ``quantity`` and ``fulfilled`` are the promise's after the event.
    """

    customer_id: str
    promise_id: str
    event_id: str
    #: the input event's ``occurred_at``
    at: int
    effect: str
    state: str
    due_at: int
    quantity: int
    fulfilled: int
    previous_due_at: int | None = None
    previous_quantity: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


Trace = Callable[[TraceRecord], None]
