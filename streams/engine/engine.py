"""The promise engine (SPEC §4–§5): typed input events in, alignment events out. Pure and deterministic.

Time is event time. ``clock`` is the largest ``occurred_at`` seen (or the time given to ``advance_to``);
a deadline fires once the *watermark* passes it: ``clock - grace`` while driven by events, or the time
given to ``advance_to`` (which asserts that input up to then is complete). Each promise keeps one entry
in a heap of marks (its next at-risk threshold, its due time, or its eviction time once ended); stale
entries are skipped when popped.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Callable, MutableMapping

from streams.contract import fingerprint
from streams.contract.events import (
    AgentReplied,
    CallbackMade,
    ClaimPublished,
    ClaimWithdrawn,
    CommitmentAmended,
    CommitmentApproved,
    CommitmentMade,
    CustomerExposed,
    InputEvent,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
    RefundIssued,
    SatisfactionRated,
    ServicePromiseMade,
    StockChanged,
    TicketOpened,
    TicketResolved,
)
from streams.engine.alignment import (
    AT_RISK,
    COMPLAINT_ATTRIBUTED,
    CONTRADICTION,
    CONTRADICTION_SEVERITY,
    FULFILLED_LATE,
    PROMISE_BROKEN,
    PROMISE_KEPT,
    PROMISE_OPENED,
    RECOVERED,
    STYLE_MISMATCH,
    TONE,
    AlignmentEvent,
    alignment_id,
    base_severity,
    raise_severity,
)
from streams.engine.config import EngineConfig, phrase_key
from streams.engine.ledger import (
    APPROVED,
    BROKEN,
    KEPT,
    LATE_SENT,
    NEAR_SENT,
    OPEN,
    STOCKOUT_SENT,
    UNAPPROVED_SENT,
    UNINFORMED_SENT,
    Catalog,
    Claim,
    CustomerLedger,
    Order,
    Promise,
    Ticket,
)
from streams.engine.trace import (
    AMENDED,
    AMENDED_UNINFORMED,
    APPROVAL,
    COUNTED,
    FULFILMENT,
    STATE_NAMES,
    UNCHANGED,
    Trace,
    TraceRecord,
)

CATALOG_KEY = "catalog"
_BEFORE_TIME = -(2**62)
_AFTER_TIME = 2**62
#: heap entries with this promise id are housekeeping passes over a whole ledger
_LEDGER_PASS = ""

MARKETING = "MARKETING"
SALES = "SALES"
SERVICE = "SERVICE"
UNATTRIBUTED = "UNATTRIBUTED"

_KIND_OF_FULFILMENT = {CallbackMade: "CALLBACK", RefundIssued: "REFUND"}

Mark = tuple[int, str, str]
#: (occurred_at, content fingerprint) of an event_id taken, for the dedupe window
Seen = tuple[int, int]
_FINGERPRINT_MASK = 2**63 - 1  # a JSON-safe integer
#: (occurred_at, rank of its type at a tie, event_id, customer_id or "" for the catalog)
Held = tuple[int, int, str, str]

#: At one instant, what makes a promise comes before what changes it, which comes before what ends it.
_RANK_AT_A_TIE: dict[type, int] = {
    ClaimPublished: 0,
    StockChanged: 1,
    CustomerExposed: 2,
    CommitmentMade: 3,
    OrderPlaced: 3,
    TicketOpened: 3,
    ServicePromiseMade: 4,
    CommitmentApproved: 5,
    CommitmentAmended: 6,
    OrderShipped: 7,
    OrderDelivered: 7,
    CallbackMade: 7,
    RefundIssued: 7,
    AgentReplied: 7,
    TicketResolved: 8,
    SatisfactionRated: 8,
    ClaimWithdrawn: 9,
}


def _held_entry(event: InputEvent) -> Held:
    return (event.occurred_at, _RANK_AT_A_TIE[type(event)], event.event_id, event.customer_id or "")


def _forget_seen_before(seen: dict[str, Seen], horizon: int) -> None:
    """Drop the dedupe ids at the front of ``seen`` (oldest first) that are older than ``horizon``."""
    while seen:
        oldest = next(iter(seen))
        if seen[oldest][0] >= horizon:
            break
        del seen[oldest]


class ConflictingDuplicate(Exception):
    """An event whose ``event_id`` was already taken with other content (SPEC §3): the first stands,
    this one changes nothing and goes to the dead letters."""

    def __init__(self, event: InputEvent) -> None:
        super().__init__(f"event_id {event.event_id!r} was already applied with other content")
        self.event_id = event.event_id


def _seen_entry(event: InputEvent) -> Seen:
    return (event.occurred_at, fingerprint(event) & _FINGERPRINT_MASK)


def _check_redelivery(known: Seen, event: InputEvent) -> None:
    """A second copy of a taken event_id: the same content is a redelivery, other content a conflict
    (a fingerprint of 0 comes from state written before fingerprints were kept: taken as the same)."""
    if known[1] and known[1] != fingerprint(event) & _FINGERPRINT_MASK:
        raise ConflictingDuplicate(event)


class PromiseEngine:
    """Correlates one stream of input events; see docs/engine.md for every rule and choice."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        ledgers: MutableMapping[str, CustomerLedger] | None = None,
        catalogs: MutableMapping[str, Catalog] | None = None,
        trace: Trace | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        #: told what each input event did to each promise (`streams.engine.trace`); None: nothing is
        self._trace = trace
        self.ledgers: MutableMapping[str, CustomerLedger] = {} if ledgers is None else ledgers
        self.catalogs: MutableMapping[str, Catalog] = {} if catalogs is None else catalogs
        self._grace = self.config.grace_ms
        self._lookback = self.config.lookback_ms
        self._dedupe_window = self.config.dedupe_window_ms
        self._signoff = self.config.signoff_ms
        self._first_reply = self.config.first_reply_ms
        self._fraction = self.config.at_risk_fraction
        self._handlers: dict[type, Callable[[CustomerLedger, InputEvent, list[AlignmentEvent]], None]] = {
            CustomerExposed: self._on_exposed,
            CommitmentMade: self._on_commitment,
            CommitmentApproved: self._on_approved,
            CommitmentAmended: self._on_amended,
            OrderPlaced: self._on_order,
            OrderShipped: self._on_shipped,
            OrderDelivered: self._on_delivered,
            CallbackMade: self._on_service_done,
            RefundIssued: self._on_service_done,
            TicketOpened: self._on_ticket,
            AgentReplied: self._on_reply,
            ServicePromiseMade: self._on_service_promise,
            TicketResolved: self._on_resolved,
            SatisfactionRated: self._on_rated,
        }
        self._dirty: dict[str, CustomerLedger] = {}
        #: events taken again with the same content (a redelivery changes nothing)
        self.redelivered = 0
        self.rebuild_indexes()

    # ----------------------------------------------------------------------------------------------
    # public surface

    @property
    def clock(self) -> int | None:
        """The event-time clock: the largest ``occurred_at`` seen, or the last ``advance_to`` time."""
        return None if self._clock == _BEFORE_TIME else self._clock

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def customer_value(self, customer_id: str) -> float:
        ledger = self.ledgers.get(customer_id)
        return ledger.value if ledger is not None else 0.0

    def rebuild_indexes(self) -> None:
        """Derive the deadline heap, the stockout index and the clock from the stored records."""
        catalog = self.catalogs.get(CATALOG_KEY)
        self._catalog = catalog if catalog is not None else Catalog()
        self._heap: list[Mark] = []
        self._held: list[Held] = [_held_entry(event) for event in self._catalog.pending.values()]
        self._shipping_by_product: dict[str, set[tuple[str, str]]] = {}
        clock = self._catalog.last_at or _BEFORE_TIME
        for customer_id, ledger in self.ledgers.items():
            clock = max(clock, ledger.last_at)
            self._held.extend(_held_entry(event) for event in ledger.pending.values())
            if ledger.compact_at is not None:
                self._heap.append((ledger.compact_at, customer_id, _LEDGER_PASS))
            for promise in ledger.promises.values():
                self._heap.append((self._next_mark(promise), customer_id, promise.promise_id))
                if promise.kind == "SHIPPING" and promise.state == OPEN:
                    self._index_shipping(customer_id, promise)
        heapq.heapify(self._heap)
        heapq.heapify(self._held)
        self._clock = clock
        self._watermark = clock - self._grace if clock != _BEFORE_TIME else _BEFORE_TIME

    def process(self, event: InputEvent) -> list[AlignmentEvent]:
        """Take one input event; returns the alignment events that became due (SPEC §4 "Arrival order").

        An event is held back until the clock has passed its ``occurred_at`` plus grace, then applied in
        time order, after every deadline before it: so any arrival order within the grace period gives
        the output of time order. An event that arrives later than that is late (SPEC §5): it is applied
        at once, judged at its own time for what is still open.
        """
        out: list[AlignmentEvent] = []
        customer_id = event.customer_id
        event_id = event.event_id
        occurred_at = event.occurred_at
        if customer_id is None:
            holder: CustomerLedger | Catalog = self._catalog
            known = holder.seen.get(event_id)
            if known is not None:
                _check_redelivery(known, event)
                self.redelivered += 1
                return out
            holder.seen[event_id] = _seen_entry(event)
            if occurred_at > holder.last_at:
                holder.last_at = occurred_at
            _forget_seen_before(holder.seen, self._clock - self._dedupe_window)
        else:
            ledgers = self.ledgers
            ledger = ledgers.get(customer_id)
            if ledger is not None:
                known = ledger.seen.get(event_id)
                if known is not None:
                    _check_redelivery(known, event)
                    self.redelivered += 1
                    return out
            else:
                ledger = CustomerLedger(sys.intern(customer_id))
            # Remember the id for the dedupe window; a first event schedules the ledger's housekeeping.
            seen = ledger.seen
            seen[event_id] = _seen_entry(event)
            if occurred_at > ledger.last_at:
                ledger.last_at = occurred_at
            horizon = self._clock - self._dedupe_window
            if next(iter(seen.values()))[0] < horizon:  # the oldest id is almost always inside the window
                _forget_seen_before(seen, horizon)
            if ledger.compact_at is None:
                ledger.compact_at = max(self._clock, occurred_at) + self._lookback
                heapq.heappush(self._heap, (ledger.compact_at, ledger.customer_id, _LEDGER_PASS))
            holder = ledger
        if occurred_at < self._watermark:
            # Late: the clock passed its time plus grace before it arrived; applied as it comes.
            self._apply(None if customer_id is None else holder, event, out)  # type: ignore[arg-type]
        else:
            holder.pending[event_id] = event
            heapq.heappush(self._held, _held_entry(event))
            self._store(holder)
            if occurred_at > self._clock:
                self._advance(occurred_at, out)
        self._flush()
        return out

    def _store(self, holder: CustomerLedger | Catalog) -> None:
        if isinstance(holder, Catalog):
            self.catalogs[CATALOG_KEY] = holder
        else:
            self.ledgers[holder.customer_id] = holder

    def advance_to(self, moment: int) -> list[AlignmentEvent]:
        """Declare input complete up to ``moment`` (``--until``, or the live worker's idle clock: wall
        time minus grace): every held event and every deadline before it is applied, in time order."""
        out: list[AlignmentEvent] = []
        if moment > self._clock:
            self._clock = moment
        if moment > self._watermark:
            self._watermark = moment
            self._release_until(moment, out)
            self._fire_until(moment, out)
        self._flush()
        return out

    def drain(self) -> list[AlignmentEvent]:
        """The input has ended (a replay without ``--until``): apply every event still held back, in
        time order, as late ones are (each catches up only the promises it touches; deadlines past the
        watermark do not fire), so the output is what a live worker shows once those events are old."""
        out: list[AlignmentEvent] = []
        self._release_until(_AFTER_TIME, out, fire_marks=False)
        self._flush()
        return out

    # ----------------------------------------------------------------------------------------------
    # time

    def _advance(self, moment: int, out: list[AlignmentEvent]) -> None:
        """Move the clock forward to ``moment`` (later than it); apply what the watermark passed."""
        self._clock = moment
        limit = moment - self._grace
        if limit > self._watermark:
            self._watermark = limit
            if self._held and self._held[0][0] < limit:
                self._release_until(limit, out)
            if self._heap and self._heap[0][0] < limit:
                self._fire_until(limit, out)

    def _release_until(self, limit: int, out: list[AlignmentEvent], *, fire_marks: bool = True) -> None:
        """Apply the held events before ``limit`` in time order, each after every deadline before it
        (unless ``fire_marks`` is off: then as late events are, see ``drain``)."""
        held = self._held
        pop = heapq.heappop
        while held and held[0][0] < limit:
            occurred_at, _, event_id, customer_id = pop(held)
            if fire_marks and self._heap and self._heap[0][0] < occurred_at:
                self._fire_until(occurred_at, out)
            if not customer_id:
                event = self._catalog.pending.pop(event_id, None)
                if event is not None:
                    self._on_global(event, out)
                continue
            ledger = self._dirty.pop(customer_id, None) or self.ledgers.get(customer_id)
            event = ledger.pending.pop(event_id, None) if ledger is not None else None
            if event is not None:
                self._apply(ledger, event, out)
            elif ledger is not None:
                self._dirty[customer_id] = ledger

    def _apply(self, ledger: CustomerLedger | None, event: InputEvent, out: list[AlignmentEvent]) -> None:
        """Apply a customer event to its ledger (taken out of ``_dirty`` or the store by the caller)."""
        customer_id = event.customer_id
        if customer_id is None:
            self._on_global(event, out)
            return
        if ledger is None:  # housekeeping forgot everything; the event starts a ledger again
            ledger = CustomerLedger(sys.intern(customer_id))
        self._flush()
        # A customer event changes no other customer's record.
        self._handlers[type(event)](ledger, event, out)
        self.ledgers[customer_id] = ledger

    def _fire_until(self, limit: int, out: list[AlignmentEvent]) -> None:
        heap = self._heap
        dirty = self._dirty
        ledgers = self.ledgers
        pop = heapq.heappop
        next_mark = self._next_mark
        while heap and heap[0][0] < limit:
            mark, customer_id, promise_id = pop(heap)
            ledger = dirty.get(customer_id) or ledgers.get(customer_id)
            if ledger is None:
                continue
            if promise_id == _LEDGER_PASS:
                if ledger.compact_at == mark:
                    dirty[customer_id] = ledger
                    self._housekeep(ledger, mark)
                continue
            promise = ledger.promises.get(promise_id)
            if promise is None or next_mark(promise) != mark:
                continue
            dirty[customer_id] = ledger
            self._fire_mark(ledger, promise, mark, out)
            if promise.promise_id in ledger.promises:
                heapq.heappush(heap, (next_mark(promise), customer_id, promise_id))

    def _near_at(self, promise: Promise) -> int | None:
        if promise.flags & NEAR_SENT or promise.due_at <= promise.made_at:
            return None
        return promise.made_at + int((promise.due_at - promise.made_at) * self._fraction)

    def _unapproved_at(self, promise: Promise) -> int | None:
        if promise.kind != "DELIVERY" or promise.flags & (APPROVED | UNAPPROVED_SENT):
            return None
        return promise.made_at + self._signoff

    def _next_mark(self, promise: Promise) -> int:
        """The earliest of the due time, ``_near_at`` and ``_unapproved_at``; the eviction time once
        the promise ended."""
        if promise.state != OPEN:
            return promise.ended_at + self._lookback  # type: ignore[operator]
        mark = promise.due_at
        near = self._near_at(promise)
        if near is not None and near < mark:
            mark = near
        unapproved = self._unapproved_at(promise)
        if unapproved is not None and unapproved < mark:
            mark = unapproved
        return mark

    def _fire_mark(
        self, ledger: CustomerLedger, promise: Promise, mark: int, out: list[AlignmentEvent]
    ) -> None:
        """The one thing due at ``mark``: at ties sign-off first, then deadline-near, then the break."""
        if promise.state != OPEN:
            self._evict(ledger, promise, mark)
        elif self._unapproved_at(promise) == mark:
            self._at_risk(ledger, promise, "UNAPPROVED", UNAPPROVED_SENT, mark, None, out)
        elif self._near_at(promise) == mark:
            self._at_risk(ledger, promise, "DEADLINE_NEAR", NEAR_SENT, mark, None, out)
        else:
            self._break(ledger, promise, out)

    def _catch_up(
        self, ledger: CustomerLedger, promise: Promise, moment: int, out: list[AlignmentEvent]
    ) -> None:
        """Before an event at ``moment`` touches a promise, fire what that promise had due before it, so
        the outcome depends on event time only, not on how far the clock happened to be."""
        fired = False
        while promise.state == OPEN:
            mark = self._next_mark(promise)
            if mark >= moment:
                break
            self._fire_mark(ledger, promise, mark, out)
            fired = True
        if fired:
            self._schedule(ledger, promise)

    def _schedule(self, ledger: CustomerLedger, promise: Promise) -> None:
        heapq.heappush(self._heap, (self._next_mark(promise), ledger.customer_id, promise.promise_id))

    # ----------------------------------------------------------------------------------------------
    # state housekeeping

    def _housekeep(self, ledger: CustomerLedger, moment: int) -> None:
        """Forget what no rule can use any more: old event ids, orders, tickets, exposures."""
        # Most passes find little to do (often only exposures to claims that are still active), so
        # each kind of record is filtered only when there is some, and the promises read only if needed.
        if ledger.seen:
            dedupe_horizon = moment - self._dedupe_window
            ledger.seen = {
                event_id: entry for event_id, entry in ledger.seen.items() if entry[0] >= dedupe_horizon
            }
        horizon = moment - self._lookback
        promises = ledger.promises.values()
        if ledger.orders:
            used_orders = {p.order_id for p in promises if p.order_id}
            used_deals = {p.deal_id for p in promises if p.deal_id}
            ledger.orders = {
                order_id: order
                for order_id, order in ledger.orders.items()
                if order.placed_at > horizon or order_id in used_orders or order.deal_id in used_deals
            }
        if ledger.tickets:
            used_tickets = {p.ticket_id for p in promises if p.ticket_id}
            ledger.tickets = {
                ticket_id: ticket
                for ticket_id, ticket in ledger.tickets.items()
                if ticket.last_at > horizon or ticket_id in used_tickets
            }
        if ledger.exposures:
            claims = self._catalog.claims
            ledger.exposures = {
                claim_id: at
                for claim_id, at in ledger.exposures.items()
                if at > horizon or (claim_id in claims and claims[claim_id].active_at(moment))
            }
        if ledger.seen or ledger.orders or ledger.tickets or ledger.exposures:
            # From the watermark, not from the mark: a mark far in the past must not make the next
            # passes step towards the present one lookback at a time.
            ledger.compact_at = max(moment, self._watermark) + self._lookback
            heapq.heappush(self._heap, (ledger.compact_at, ledger.customer_id, _LEDGER_PASS))
        else:
            ledger.compact_at = None

    def _evict(self, ledger: CustomerLedger, promise: Promise, moment: int) -> None:
        del ledger.promises[promise.promise_id]
        if not ledger.promises:
            self._housekeep(ledger, moment)

    def _flush(self) -> None:
        """Write every ledger changed in this call back to its store (a Faust table sees the change)."""
        for customer_id, ledger in self._dirty.items():
            # Housekeeping clears compact_at only when it left nothing time-bound behind.
            if ledger.compact_at is None and ledger.holds_nothing():
                if customer_id in self.ledgers:
                    del self.ledgers[customer_id]
            else:
                self.ledgers[customer_id] = ledger
        self._dirty.clear()

    def _index_shipping(self, customer_id: str, promise: Promise) -> None:
        self._shipping_by_product.setdefault(promise.product or "", set()).add(
            (customer_id, promise.promise_id)
        )

    def _unindex_shipping(self, customer_id: str, promise: Promise) -> None:
        entries = self._shipping_by_product.get(promise.product or "")
        if entries is not None:
            entries.discard((customer_id, promise.promise_id))
            if not entries:
                del self._shipping_by_product[promise.product or ""]

    # ----------------------------------------------------------------------------------------------
    # promise outcomes

    def _promise_event(
        self,
        kind_of_event: str,
        ledger: CustomerLedger,
        promise: Promise,
        at: int,
        cause_event_id: str | None,
        reason: str | None = None,
        delay_s: int | None = None,
        severity: str | None = None,
    ) -> AlignmentEvent:
        customer_id = ledger.customer_id
        return AlignmentEvent(  # positional: this is the most frequent output
            alignment_id(kind_of_event, customer_id, promise.promise_id, reason or ""),
            kind_of_event,
            customer_id,
            at,
            promise.promise_id,
            promise.department,
            promise.kind,
            reason,
            promise.due_at,
            promise.ticket_id,
            None,
            [],
            [],
            promise.claim_id,
            promise.campaign_id,
            promise.product,
            promise.rep_name,
            None,
            promise.deal_id,
            promise.order_id,
            delay_s,
            severity,
            cause_event_id,
        )

    def _open(self, ledger: CustomerLedger, promise: Promise, cause: str, out: list[AlignmentEvent]) -> None:
        ledger.promises[promise.promise_id] = promise
        out.append(self._promise_event(PROMISE_OPENED, ledger, promise, promise.made_at, cause))
        self._schedule(ledger, promise)

    def _keep(
        self, ledger: CustomerLedger, promise: Promise, at: int, cause: str, out: list[AlignmentEvent]
    ) -> None:
        promise.state = KEPT
        promise.ended_at = at
        if promise.kind == "SHIPPING":
            self._unindex_shipping(ledger.customer_id, promise)
        out.append(self._promise_event(PROMISE_KEPT, ledger, promise, at, cause))
        self._schedule(ledger, promise)

    def _break(self, ledger: CustomerLedger, promise: Promise, out: list[AlignmentEvent]) -> None:
        reason = self._broken_reason(promise)
        promise.state = BROKEN
        promise.ended_at = promise.trouble_at = promise.due_at
        if promise.kind == "SHIPPING":
            self._unindex_shipping(ledger.customer_id, promise)
        config = self.config
        severity = raise_severity(
            base_severity(promise.kind, reason),
            ledger.value,
            config.severity_raise_one_level_at,
            config.severity_raise_two_levels_at,
        )
        out.append(
            self._promise_event(PROMISE_BROKEN, ledger, promise, promise.due_at, None, reason, None, severity)
        )

    @staticmethod
    def _broken_reason(promise: Promise) -> str:
        kind = promise.kind
        if kind == "DELIVERY":
            if promise.fulfilled == 0:
                return "NOT_DELIVERED"
            return "SHORT" if promise.fulfilled < promise.quantity else "MISSING_FEATURE"
        if kind == "SHIPPING":
            return "NOT_SHIPPED"
        if kind == "FIRST_REPLY":
            return "NO_REPLY"
        return "NOT_DONE"

    def _at_risk(
        self,
        ledger: CustomerLedger,
        promise: Promise,
        reason: str,
        flag: int,
        at: int,
        cause: str | None,
        out: list[AlignmentEvent],
    ) -> None:
        if promise.flags & flag or promise.state != OPEN:
            return
        promise.flags |= flag
        promise.trouble_at = at
        out.append(self._promise_event(AT_RISK, ledger, promise, at, cause, reason))

    def _fulfil(
        self,
        ledger: CustomerLedger,
        promise: Promise,
        at: int,
        cause: str,
        out: list[AlignmentEvent],
    ) -> None:
        """The promise's terms are now met at ``at``: kept if still open, else recorded as late once."""
        if promise.state == OPEN:
            self._keep(ledger, promise, at, cause, out)
        elif promise.state == BROKEN and not promise.flags & LATE_SENT:
            promise.flags |= LATE_SENT
            delay_s = (at - promise.due_at) // 1000
            out.append(self._promise_event(FULFILLED_LATE, ledger, promise, at, cause, None, delay_s))

    @staticmethod
    def _terms_met(promise: Promise) -> bool:
        if promise.fulfilled < promise.quantity:
            return False
        got = promise.fulfilled_features
        return all(feature in got for feature in promise.features)

    def _touch(
        self,
        ledger: CustomerLedger,
        promise: Promise,
        event: InputEvent,
        effect: str,
        state: int,
        previous_due_at: int | None = None,
        previous_quantity: int | None = None,
    ) -> None:
        """Tell the trace (the caller checked there is one) what ``event`` did to ``promise``."""
        self._trace(  # type: ignore[misc]
            TraceRecord(
                ledger.customer_id,
                promise.promise_id,
                event.event_id,
                event.occurred_at,
                effect,
                STATE_NAMES[state],
                promise.due_at,
                promise.quantity,
                promise.fulfilled,
                previous_due_at,
                previous_quantity,
            )
        )

    # ----------------------------------------------------------------------------------------------
    # customer events

    def _on_exposed(self, ledger: CustomerLedger, event: CustomerExposed, out: list[AlignmentEvent]) -> None:
        if event.claim_id not in ledger.exposures:
            ledger.exposures[event.claim_id] = event.occurred_at

    def _exposed_claims(self, ledger: CustomerLedger, product: str, moment: int) -> list[Claim]:
        claims = self._catalog.claims
        found = []
        for claim_id in ledger.exposures:
            claim = claims.get(claim_id)
            if claim is not None and claim.product == product and claim.active_at(moment):
                found.append(claim)
        return found

    def _on_commitment(
        self, ledger: CustomerLedger, event: CommitmentMade, out: list[AlignmentEvent]
    ) -> None:
        if event.commitment_id in ledger.promises:
            return
        seen_claims = self._exposed_claims(ledger, event.product, event.occurred_at)
        claim = min(seen_claims, key=lambda c: (ledger.exposures[c.claim_id], c.claim_id), default=None)
        promise = Promise(
            promise_id=event.commitment_id,
            kind="DELIVERY",
            department=SALES,
            made_at=event.occurred_at,
            due_at=event.deliver_by,
            quantity=event.quantity,
            product=sys.intern(event.product),
            features=tuple(event.features),
            deal_id=event.deal_id,
            claim_id=claim.claim_id if claim else None,
            campaign_id=claim.campaign_id if claim else None,
            rep_name=event.rep_name,
        )
        if event.rep_name:
            ledger.rep_name = event.rep_name
        self._open(ledger, promise, event.event_id, out)
        if promise.quantity == 0 and not promise.features:
            self._fulfil(ledger, promise, event.occurred_at, event.event_id, out)

    def _open_delivery(self, ledger: CustomerLedger, commitment_id: str) -> Promise | None:
        promise = ledger.promises.get(commitment_id)
        return promise if promise is not None and promise.kind == "DELIVERY" else None

    def _on_approved(
        self, ledger: CustomerLedger, event: CommitmentApproved, out: list[AlignmentEvent]
    ) -> None:
        promise = self._open_delivery(ledger, event.commitment_id)
        if promise is None or promise.state != OPEN:
            if promise is not None and self._trace is not None:
                self._touch(ledger, promise, event, UNCHANGED, promise.state)
            return
        self._catch_up(ledger, promise, event.occurred_at, out)
        if promise.state == OPEN and not promise.flags & APPROVED:
            promise.flags |= APPROVED
            self._schedule(ledger, promise)
            if self._trace is not None:
                self._touch(ledger, promise, event, APPROVAL, OPEN)
        elif self._trace is not None:
            self._touch(ledger, promise, event, UNCHANGED, promise.state)

    def _on_amended(
        self, ledger: CustomerLedger, event: CommitmentAmended, out: list[AlignmentEvent]
    ) -> None:
        promise = self._open_delivery(ledger, event.commitment_id)
        if promise is None or promise.state != OPEN:
            if promise is not None and self._trace is not None:
                self._touch(ledger, promise, event, UNCHANGED, promise.state)
            return
        self._catch_up(ledger, promise, event.occurred_at, out)
        if promise.state != OPEN:
            if self._trace is not None:
                self._touch(ledger, promise, event, UNCHANGED, promise.state)
            return
        if not event.customer_informed:
            if self._trace is not None:
                self._touch(ledger, promise, event, AMENDED_UNINFORMED, OPEN)
            self._at_risk(
                ledger, promise, "UNINFORMED_CHANGE", UNINFORMED_SENT, event.occurred_at, event.event_id, out
            )
            return
        previous_due_at, previous_quantity = promise.due_at, promise.quantity
        if event.deliver_by is not None:
            promise.due_at = event.deliver_by
        if event.quantity is not None:
            promise.quantity = event.quantity
        if self._trace is not None:
            self._touch(ledger, promise, event, AMENDED, OPEN, previous_due_at, previous_quantity)
        if self._terms_met(promise):
            self._fulfil(ledger, promise, event.occurred_at, event.event_id, out)
        else:
            self._schedule(ledger, promise)

    def _on_order(self, ledger: CustomerLedger, event: OrderPlaced, out: list[AlignmentEvent]) -> None:
        if event.amount is not None:
            ledger.value += event.amount
        if event.order_id in ledger.orders:
            return
        product = sys.intern(event.product)
        seen_claims = self._exposed_claims(ledger, product, event.occurred_at)
        if event.deal_id is not None or seen_claims:
            ledger.orders[event.order_id] = Order(event.deal_id, product, event.quantity, event.occurred_at)
        if not seen_claims:
            return
        # One shipping promise per order: the most demanding claim the customer saw.
        claim = min(seen_claims, key=lambda c: (c.shipping_window_ms(), c.claim_id))
        promise = Promise(
            promise_id=f"{claim.claim_id}:{event.order_id}",
            kind="SHIPPING",
            department=MARKETING,
            made_at=event.occurred_at,
            due_at=event.occurred_at + claim.shipping_window_ms(),
            quantity=event.quantity,
            product=product,
            deal_id=event.deal_id,
            order_id=event.order_id,
            claim_id=claim.claim_id,
            campaign_id=claim.campaign_id,
        )
        self._open(ledger, promise, event.event_id, out)
        self._index_shipping(ledger.customer_id, promise)
        if self._catalog.stock.get(product) == 0:
            self._at_risk(ledger, promise, "STOCKOUT", STOCKOUT_SENT, event.occurred_at, event.event_id, out)

    def _on_shipped(self, ledger: CustomerLedger, event: OrderShipped, out: list[AlignmentEvent]) -> None:
        order_id = event.order_id
        for promise in list(ledger.promises.values()):
            if promise.kind != "SHIPPING" or promise.order_id != order_id:
                continue
            self._catch_up(ledger, promise, event.occurred_at, out)
            promise.fulfilled += event.quantity
            if self._trace is not None:
                self._touch(ledger, promise, event, COUNTED, promise.state)
            if self._terms_met(promise):
                self._fulfil(ledger, promise, event.occurred_at, event.event_id, out)

    def _on_delivered(self, ledger: CustomerLedger, event: OrderDelivered, out: list[AlignmentEvent]) -> None:
        deal_id = event.deal_id
        if deal_id is None:
            order = ledger.orders.get(event.order_id)
            deal_id = order.deal_id if order is not None else None
        if deal_id is None:
            return
        for promise in list(ledger.promises.values()):
            if promise.kind != "DELIVERY" or promise.deal_id != deal_id or promise.product != event.product:
                continue
            self._catch_up(ledger, promise, event.occurred_at, out)
            promise.fulfilled += event.quantity
            if event.features:
                promise.fulfilled_features = tuple(sorted({*promise.fulfilled_features, *event.features}))
            if self._trace is not None:
                self._touch(ledger, promise, event, COUNTED, promise.state)
            if self._terms_met(promise):
                self._fulfil(ledger, promise, event.occurred_at, event.event_id, out)

    def _on_service_done(
        self, ledger: CustomerLedger, event: CallbackMade | RefundIssued, out: list[AlignmentEvent]
    ) -> None:
        kind = _KIND_OF_FULFILMENT[type(event)]
        ticket = ledger.tickets.get(event.ticket_id)
        if ticket is not None:
            ticket.last_at = max(ticket.last_at, event.occurred_at)
        for promise in sorted(ledger.promises.values(), key=lambda p: (p.due_at, p.promise_id)):
            if promise.kind == kind and promise.ticket_id == event.ticket_id:
                self._catch_up(ledger, promise, event.occurred_at, out)
                if self._trace is not None:
                    self._touch(ledger, promise, event, FULFILMENT, promise.state)
                self._fulfil(ledger, promise, event.occurred_at, event.event_id, out)

    def _on_service_promise(
        self, ledger: CustomerLedger, event: ServicePromiseMade, out: list[AlignmentEvent]
    ) -> None:
        if event.promise_id in ledger.promises:
            return
        ticket = ledger.tickets.get(event.ticket_id)
        if ticket is not None:
            ticket.last_at = max(ticket.last_at, event.occurred_at)
        promise = Promise(
            promise_id=event.promise_id,
            kind=event.kind,
            department=SERVICE,
            made_at=event.occurred_at,
            due_at=event.due_at,
            quantity=0,
            ticket_id=event.ticket_id,
        )
        self._open(ledger, promise, event.event_id, out)

    def _on_ticket(self, ledger: CustomerLedger, event: TicketOpened, out: list[AlignmentEvent]) -> None:
        ticket = ledger.tickets.get(event.ticket_id)
        if ticket is not None and ticket.opened_at is not None:
            return
        if ticket is None:
            ticket = ledger.tickets[event.ticket_id] = Ticket(event.ticket_id, None, None)
        ticket.opened_at = event.occurred_at
        ticket.category = event.category
        ticket.order_id = event.order_id
        ticket.deal_id = event.deal_id
        ticket.last_at = max(ticket.last_at, event.occurred_at)
        out.append(self._attribute(ledger, event))
        promise = Promise(
            promise_id=f"{event.ticket_id}:first-reply",
            kind="FIRST_REPLY",
            department=SERVICE,
            made_at=event.occurred_at,
            due_at=event.occurred_at + self._first_reply,
            quantity=0,
            order_id=event.order_id,
            deal_id=event.deal_id,
            ticket_id=event.ticket_id,
        )
        if promise.promise_id in ledger.promises:
            return
        self._open(ledger, promise, event.event_id, out)
        if ticket.replied:
            # The reply arrived first (the ticket was late): judged at the reply's own time.
            replied_at = max(ticket.first_reply_at or 0, event.occurred_at)
            self._catch_up(ledger, promise, replied_at, out)
            self._fulfil(ledger, promise, replied_at, event.event_id, out)

    def _attribute(self, ledger: CustomerLedger, event: TicketOpened) -> AlignmentEvent:
        """Trace the complaint through its order and deal, else to recent trouble (SPEC §4)."""
        promises = ledger.promises.values()
        order = ledger.orders.get(event.order_id) if event.order_id else None
        deal_id = event.deal_id or (order.deal_id if order is not None else None)
        deal_orders = (
            {order_id for order_id, o in ledger.orders.items() if o.deal_id == deal_id} if deal_id else set()
        )
        chain = [
            p
            for p in promises
            if p.kind != "FIRST_REPLY"
            and (
                (event.order_id is not None and p.order_id == event.order_id)
                or (deal_id is not None and p.deal_id == deal_id)
                or (p.order_id is not None and p.order_id in deal_orders)
            )
        ]
        if chain:
            chain.sort(key=lambda p: (p.made_at, p.promise_id), reverse=True)
        else:
            since = event.occurred_at - self._lookback
            chain = [p for p in promises if p.trouble_at is not None and since <= p.trouble_at]
            chain.sort(key=lambda p: (p.trouble_at, p.promise_id), reverse=True)
        root = min(chain, key=lambda p: (p.made_at, p.promise_id), default=None)
        if root is None:
            root_department = UNATTRIBUTED
        elif root.claim_id is not None:
            root_department = MARKETING
        else:
            root_department = root.department
        return AlignmentEvent(
            alignment_id=alignment_id(COMPLAINT_ATTRIBUTED, ledger.customer_id, event.ticket_id),
            type=COMPLAINT_ATTRIBUTED,
            customer_id=ledger.customer_id,
            at=event.occurred_at,
            reason=event.category,
            ticket_id=event.ticket_id,
            root_department=root_department,
            promise_ids=[p.promise_id for p in chain],
            claim_id=root.claim_id if root else None,
            campaign_id=root.campaign_id if root else None,
            product=root.product if root else None,
            rep_name=root.rep_name if root else None,
            deal_id=deal_id,
            order_id=event.order_id,
            cause_event_id=event.event_id,
        )

    def _on_reply(self, ledger: CustomerLedger, event: AgentReplied, out: list[AlignmentEvent]) -> None:
        ticket = ledger.tickets.get(event.ticket_id)
        if ticket is None:
            ticket = ledger.tickets[event.ticket_id] = Ticket(event.ticket_id, None, None)
        ticket.last_at = max(ticket.last_at, event.occurred_at)
        if not ticket.replied:
            ticket.replied = True
            ticket.first_reply_at = event.occurred_at
            promise = ledger.promises.get(f"{event.ticket_id}:first-reply")
            if promise is not None:
                self._catch_up(ledger, promise, event.occurred_at, out)
                if self._trace is not None:
                    self._touch(ledger, promise, event, FULFILMENT, promise.state)
                self._fulfil(ledger, promise, event.occurred_at, event.event_id, out)
        customer_id = ledger.customer_id
        if event.agent_name is None and ledger.rep_name and not ticket.style_flagged:
            ticket.style_flagged = True
            out.append(
                AlignmentEvent(
                    alignment_id=alignment_id(STYLE_MISMATCH, customer_id, event.ticket_id),
                    type=STYLE_MISMATCH,
                    customer_id=customer_id,
                    at=event.occurred_at,
                    department=SERVICE,
                    ticket_id=event.ticket_id,
                    rep_name=ledger.rep_name,
                    cause_event_id=event.event_id,
                )
            )
        phrases = self._discouraged_phrases(event.text)
        if phrases:
            out.append(
                AlignmentEvent(
                    alignment_id=alignment_id(TONE, customer_id, event.ticket_id, event.event_id),
                    type=TONE,
                    customer_id=customer_id,
                    at=event.occurred_at,
                    department=SERVICE,
                    ticket_id=event.ticket_id,
                    phrases=phrases,
                    agent_name=event.agent_name,
                    cause_event_id=event.event_id,
                )
            )

    def _discouraged_phrases(self, text: str) -> list[str]:
        """The configured phrases found, each once, in the configured order and spelling."""
        matches = self.config.tone_regex.findall(text)
        if not matches:
            return []
        found = {phrase_key(match) for match in matches}
        return [phrase for key, phrase in self.config.tone_canonical.items() if key in found]

    def _on_resolved(self, ledger: CustomerLedger, event: TicketResolved, out: list[AlignmentEvent]) -> None:
        ticket = ledger.tickets.get(event.ticket_id)
        if ticket is not None:
            ticket.resolved = True
            self._check_recovered(ledger, ticket, event.occurred_at, event.event_id, out)

    def _on_rated(self, ledger: CustomerLedger, event: SatisfactionRated, out: list[AlignmentEvent]) -> None:
        ticket = ledger.tickets.get(event.ticket_id)
        if ticket is not None:
            ticket.score = event.score
            self._check_recovered(ledger, ticket, event.occurred_at, event.event_id, out)

    def _check_recovered(
        self, ledger: CustomerLedger, ticket: Ticket, at: int, cause: str, out: list[AlignmentEvent]
    ) -> None:
        ticket.last_at = max(ticket.last_at, at)
        if ticket.recovered or not ticket.resolved or ticket.opened_at is None:
            return
        if ticket.score is None or ticket.score < 4:
            return
        ticket.recovered = True
        out.append(
            AlignmentEvent(
                alignment_id=alignment_id(RECOVERED, ledger.customer_id, ticket.ticket_id),
                type=RECOVERED,
                customer_id=ledger.customer_id,
                at=at,
                department=SERVICE,
                ticket_id=ticket.ticket_id,
                reason=ticket.category,
                order_id=ticket.order_id,
                deal_id=ticket.deal_id,
                cause_event_id=cause,
            )
        )

    # ----------------------------------------------------------------------------------------------
    # global events

    def _on_global(self, event: InputEvent, out: list[AlignmentEvent]) -> None:
        catalog = self._catalog
        if isinstance(event, StockChanged):
            self._on_stock(event, out)
        elif isinstance(event, ClaimPublished):
            self._on_claim(event, out)
        elif isinstance(event, ClaimWithdrawn):
            claim = catalog.claims.get(event.claim_id)
            if claim is not None and claim.withdrawn_at is None:
                claim.withdrawn_at = event.occurred_at
        self.catalogs[CATALOG_KEY] = catalog

    def _on_claim(self, event: ClaimPublished, out: list[AlignmentEvent]) -> None:
        catalog = self._catalog
        if event.claim_id in catalog.claims:
            return
        claim = Claim(
            claim_id=event.claim_id,
            campaign_id=event.campaign_id,
            product=sys.intern(event.product),
            claim=event.claim,
            ships_within_hours=event.ships_within_hours,
            valid_until=event.valid_until,
            published_at=event.occurred_at,
        )
        catalog.claims[claim.claim_id] = claim
        if catalog.stock.get(claim.product) == 0 and claim.active_at(event.occurred_at):
            claim.contradicted = True
            out.append(self._contradiction(claim, "CLAIM_WITHOUT_STOCK", event))
            self._stockout_at_risk(claim.product, event, out)

    def _on_stock(self, event: StockChanged, out: list[AlignmentEvent]) -> None:
        catalog = self._catalog
        product = sys.intern(event.product)
        catalog.stock[product] = event.on_hand
        claims = sorted(
            (claim for claim in catalog.claims.values() if claim.product == product),
            key=lambda claim: claim.claim_id,
        )
        if event.on_hand > 0:
            for claim in claims:
                claim.contradicted = False
            return
        for claim in claims:
            if claim.active_at(event.occurred_at) and not claim.contradicted:
                claim.contradicted = True
                out.append(self._contradiction(claim, "STOCKOUT", event))
        self._stockout_at_risk(product, event, out)

    def _contradiction(self, claim: Claim, reason: str, event: InputEvent) -> AlignmentEvent:
        return AlignmentEvent(
            alignment_id=alignment_id(CONTRADICTION, claim.claim_id, claim.product, reason, event.event_id),
            type=CONTRADICTION,
            customer_id=None,
            at=event.occurred_at,
            department=MARKETING,
            reason=reason,
            claim_id=claim.claim_id,
            campaign_id=claim.campaign_id,
            product=claim.product,
            severity=CONTRADICTION_SEVERITY,
            cause_event_id=event.event_id,
        )

    def _stockout_at_risk(self, product: str, event: InputEvent, out: list[AlignmentEvent]) -> None:
        for customer_id, promise_id in sorted(self._shipping_by_product.get(product, ())):
            ledger = self._dirty.get(customer_id) or self.ledgers.get(customer_id)
            promise = ledger.promises.get(promise_id) if ledger is not None else None
            if promise is None or promise.state != OPEN:
                continue
            self._dirty[customer_id] = ledger
            self._catch_up(ledger, promise, event.occurred_at, out)
            self._at_risk(ledger, promise, "STOCKOUT", STOCKOUT_SENT, event.occurred_at, event.event_id, out)
