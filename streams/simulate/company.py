"""A synthetic company: campaigns, reps, orders, stock and service, as decoded-event dicts.

Seeded and deterministic: every choice comes from one ``random.Random(seed)``, no clock is read. Each
story (a deal, an order, a ticket) is drawn whole when it starts, its later events wait in a heap, and
events come out in publication order: by the time they are published, which is their ``occurred_at``
except for a few producers that publish late (and a few redeliveries of the same event).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: 2026-03-02T00:00:00Z, a Monday
DEFAULT_START_MS = 1_772_409_600_000

PRODUCTS = ("widget", "gadget", "gizmo", "sprocket", "doohickey", "flux-capacitor", "cog", "lever")
REPS = ("Ana Ruiz", "Ben Okafor", "Chen Wei", "Dana Kowalski", "Eli Haddad")
AGENTS = ("Farah", "Gus", "Hana", "Ivo", "Jun")
FEATURES = ("SSO", "audit-log", "API", "SLA", "SCIM")
SOURCES = {"marketing": "hubspot", "sales": "salesforce", "fulfilment": "erp", "service": "zendesk"}
KIND_REPLIES = (
    "Thanks for reaching out, I am looking into it right now.",
    "I have checked your order and will update you today.",
    "Sorry about this, I have escalated it to the warehouse.",
)
DISCOURAGED_REPLIES = (
    "Unfortunately there is nothing we can do.",
    "I’m afraid that is our policy.",
    "You obviously ordered the wrong item.",
    "You have reached the wrong department.",
    "Please follow our procedure for returns.",
)
PROBLEM_CATEGORIES = {
    "late": "LATE",
    "short": "MISSING_ITEMS",
    "missing": "LATE",
    "feature": "MISSING_FEATURE",
    "unshipped": "NOT_AS_ADVERTISED",
}
OTHER_CATEGORIES = ("SLOW_SERVICE", "OTHER", "NOT_AS_ADVERTISED", "LATE")


class _Company:
    def __init__(self, customers: int, seed: int, start_ms: int) -> None:
        self.rng = random.Random(seed)
        self.start = start_ms
        self.customers = [f"cust-{number:05d}" for number in range(customers)]
        self.pending: list[tuple[int, int, dict[str, Any]]] = []
        self.counter = 0
        #: claim_id -> (product, claim kind, valid_until)
        self.active_claims: dict[str, tuple[str, str, int | None]] = {}
        self.stock = dict.fromkeys(PRODUCTS, 0)
        #: customer -> products of claims they saw
        self.exposed: dict[str, list[str]] = {}
        self.with_rep: set[str] = set()

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:07d}"

    def emit(self, type_name: str, customer: str | None, at: int, department: str, **fields: Any) -> None:
        event = {
            "type": type_name,
            "event_id": self.next_id("ev"),
            "customer_id": customer,
            "occurred_at": at,
            "source": SOURCES[department],
            **fields,
        }
        rng = self.rng
        published = at + rng.randint(10, 60) * 60_000 if rng.random() < 0.01 else at
        self.counter += 1
        heapq.heappush(self.pending, (published, self.counter, event))
        if rng.random() < 0.003:
            self.counter += 1
            heapq.heappush(self.pending, (published + rng.randint(1, 30) * 1000, self.counter, event))

    # -- global -------------------------------------------------------------------------------------

    def publish_claim(self, at: int, product: str, days_left: int) -> None:
        rng = self.rng
        claim_id = self.next_id("claim")
        kind = rng.choice(("IN_STOCK", "SHIPS_WITHIN"))
        hours = rng.choice((24, 48, 72)) if kind == "SHIPS_WITHIN" else None
        valid_until = at + rng.randint(5, 20) * DAY_MS if rng.random() < 0.4 else None
        self.active_claims[claim_id] = (product, kind, valid_until)
        self.emit(
            "ClaimPublished",
            None,
            at,
            "marketing",
            claim_id=claim_id,
            campaign_id=f"campaign-{rng.randint(1, 6)}",
            product=product,
            claim=kind,
            ships_within_hours=hours,
            valid_until=valid_until,
            text=f"{product}: {'in stock' if kind == 'IN_STOCK' else f'ships within {hours} h'}",
        )

    def company_day(self, day_start: int, days_left: int) -> None:
        rng = self.rng
        for product in PRODUCTS:
            at = day_start + rng.randint(0, DAY_MS - 1)
            if self.stock[product] == 0 or rng.random() < 0.3:
                on_hand = 0 if rng.random() < 0.12 else rng.randint(20, 500)
                self.stock[product] = on_hand
                self.emit("StockChanged", None, at, "fulfilment", product=product, on_hand=on_hand)
                if on_hand == 0 and rng.random() < 0.5:
                    self.publish_claim(at + HOUR_MS, product, days_left)
        if rng.random() < 0.25:
            self.publish_claim(day_start + rng.randint(0, DAY_MS - 1), rng.choice(PRODUCTS), days_left)
        if self.active_claims and rng.random() < 0.1:
            claim_id = rng.choice(sorted(self.active_claims))
            del self.active_claims[claim_id]
            self.emit(
                "ClaimWithdrawn", None, day_start + rng.randint(0, DAY_MS - 1), "marketing", claim_id=claim_id
            )
        for claim_id, (_, _, valid_until) in list(self.active_claims.items()):
            if valid_until is not None and valid_until < day_start:
                del self.active_claims[claim_id]

    # -- customers -----------------------------------------------------------------------------------

    def customer_day(self, customer: str, day_start: int) -> None:
        rng = self.rng
        if self.active_claims and rng.random() < 0.25:
            claim_id = rng.choice(sorted(self.active_claims))
            at = day_start + rng.randint(0, DAY_MS // 2)
            self.emit("CustomerExposed", customer, at, "marketing", claim_id=claim_id)
            self.exposed.setdefault(customer, []).append(self.active_claims[claim_id][0])
            if rng.random() < 0.6:
                self.order_story(customer, at + rng.randint(1, 8) * HOUR_MS, self.active_claims[claim_id][0])
        if rng.random() < 0.06:
            self.order_story(customer, day_start + rng.randint(0, DAY_MS - 1), rng.choice(PRODUCTS))
        if rng.random() < 0.035:
            self.deal_story(customer, day_start + rng.randint(0, DAY_MS - 1))
        if rng.random() < 0.02:
            self.ticket_story(customer, day_start + rng.randint(0, DAY_MS - 1), rng.choice(OTHER_CATEGORIES))

    def order_story(
        self, customer: str, at: int, product: str, deal_id: str | None = None, quantity: int = 0
    ) -> str:
        rng = self.rng
        order_id = self.next_id("order")
        quantity = quantity or rng.randint(1, 5)
        self.emit(
            "OrderPlaced",
            customer,
            at,
            "fulfilment",
            order_id=order_id,
            deal_id=deal_id,
            product=product,
            quantity=quantity,
            amount=round(quantity * rng.uniform(20, 400), 2),
        )
        if deal_id is not None:
            shipped_at = at + rng.randint(4, 20) * HOUR_MS
            self.emit(
                "OrderShipped",
                customer,
                shipped_at,
                "fulfilment",
                order_id=order_id,
                product=product,
                quantity=quantity,
            )
            return order_id
        roll = rng.random()
        if roll < 0.05:
            self.ticket_story(
                customer, at + rng.randint(30, 60) * HOUR_MS, "NOT_AS_ADVERTISED", order_id=order_id
            )
            return order_id
        shipped_at = at + (rng.randint(1, 20) if roll < 0.85 else rng.randint(50, 90)) * HOUR_MS
        self.emit(
            "OrderShipped",
            customer,
            shipped_at,
            "fulfilment",
            order_id=order_id,
            product=product,
            quantity=quantity,
        )
        delivered_at = shipped_at + rng.randint(24, 72) * HOUR_MS
        self.emit(
            "OrderDelivered",
            customer,
            delivered_at,
            "fulfilment",
            order_id=order_id,
            deal_id=None,
            product=product,
            quantity=quantity,
            features=[],
        )
        if roll >= 0.85 and rng.random() < 0.5:
            self.ticket_story(customer, shipped_at - rng.randint(1, 20) * HOUR_MS, "LATE", order_id=order_id)
        return order_id

    def deal_story(self, customer: str, at: int) -> None:
        rng = self.rng
        commitment_id = self.next_id("commit")
        deal_id = self.next_id("deal")
        products = self.exposed.get(customer)
        product = rng.choice(products) if products and rng.random() < 0.5 else rng.choice(PRODUCTS)
        quantity = rng.randint(5, 50)
        deliver_by = at + rng.randint(5, 14) * DAY_MS
        features = rng.sample(FEATURES, rng.choice((0, 0, 1, 2)))
        rep = rng.choice(REPS) if rng.random() < 0.85 else None
        if rep:
            self.with_rep.add(customer)
        self.emit(
            "CommitmentMade",
            customer,
            at,
            "sales",
            commitment_id=commitment_id,
            deal_id=deal_id,
            rep_name=rep,
            product=product,
            quantity=quantity,
            deliver_by=deliver_by,
            unit_price=round(rng.uniform(10, 90), 2),
            features=features,
        )
        approval = rng.random()
        if approval < 0.9:
            hours = rng.randint(1, 20) if approval < 0.8 else rng.randint(30, 50)
            self.emit(
                "CommitmentApproved",
                customer,
                at + hours * HOUR_MS,
                "sales",
                commitment_id=commitment_id,
                approver=rng.choice(("ops-lead", "delivery-manager")),
            )
        if rng.random() < 0.12:
            informed = rng.random() < 0.5
            amended_at = at + rng.randint(2, 4) * DAY_MS
            moved = rng.random() < 0.6
            if informed and moved:
                deliver_by += 3 * DAY_MS
            if informed and not moved:
                quantity = max(1, quantity - 5)
            self.emit(
                "CommitmentAmended",
                customer,
                amended_at,
                "sales",
                commitment_id=commitment_id,
                deliver_by=deliver_by + (0 if informed else 3 * DAY_MS) if moved else None,
                quantity=None if moved else max(1, quantity - (0 if informed else 5)),
                customer_informed=informed,
            )
        order_id = self.order_story(
            customer, at + rng.randint(2, 20) * HOUR_MS, product, deal_id=deal_id, quantity=quantity
        )
        outcome = rng.choices(
            ("full", "split", "short", "late", "missing", "feature"), (55, 12, 9, 11, 6, 7)
        )[0]
        window = deliver_by - at
        on_time = at + int(window * rng.uniform(0.3, 0.95))
        deliveries: list[tuple[int, int, list[str]]] = []
        if outcome == "full":
            deliveries = [(on_time, quantity, features)]
        elif outcome == "split":
            first = quantity // 2
            deliveries = [(on_time - 6 * HOUR_MS, first, features), (on_time, quantity - first, [])]
        elif outcome == "short":
            deliveries = [(on_time, max(1, quantity * 6 // 10), features)]
        elif outcome == "late":
            deliveries = [(deliver_by + rng.randint(1, 5) * DAY_MS, quantity, features)]
        elif outcome == "feature":
            deliveries = [(on_time, quantity, features[:-1] if features else [])]
        for delivered_at, delivered, delivered_features in deliveries:
            self.emit(
                "OrderDelivered",
                customer,
                delivered_at,
                "fulfilment",
                order_id=order_id,
                deal_id=deal_id if rng.random() < 0.6 else None,
                product=product,
                quantity=delivered,
                features=list(delivered_features),
            )
        problem = {"late": "late", "short": "short", "missing": "missing", "feature": "feature"}.get(outcome)
        if problem and rng.random() < 0.6:
            ticket_at = deliver_by + rng.randint(6, 72) * HOUR_MS
            self.ticket_story(customer, ticket_at, PROBLEM_CATEGORIES[problem], deal_id=deal_id)

    def ticket_story(
        self, customer: str, at: int, category: str, order_id: str | None = None, deal_id: str | None = None
    ) -> None:
        rng = self.rng
        ticket_id = self.next_id("ticket")
        self.emit(
            "TicketOpened",
            customer,
            at,
            "service",
            ticket_id=ticket_id,
            category=category,
            order_id=order_id,
            deal_id=deal_id,
            text=f"About my {category.lower().replace('_', ' ')} problem",
        )
        reply = rng.random()
        last = at
        if reply < 0.95:
            replied_at = at + (rng.randint(1, 20) if reply < 0.85 else rng.randint(26, 40)) * HOUR_MS
            for number in range(rng.randint(1, 3)):
                signed = rng.random() < (0.7 if customer in self.with_rep else 0.8)
                text = rng.choice(DISCOURAGED_REPLIES) if rng.random() < 0.15 else rng.choice(KIND_REPLIES)
                self.emit(
                    "AgentReplied",
                    customer,
                    replied_at + number * 5 * HOUR_MS,
                    "service",
                    ticket_id=ticket_id,
                    agent_name=rng.choice(AGENTS) if signed else None,
                    text=text,
                )
                last = replied_at + number * 5 * HOUR_MS
        if rng.random() < 0.35:
            kind = rng.choice(("CALLBACK", "REFUND"))
            made_at = last + HOUR_MS
            due_at = made_at + (4 * HOUR_MS if kind == "CALLBACK" else 5 * DAY_MS)
            self.emit(
                "ServicePromiseMade",
                customer,
                made_at,
                "service",
                promise_id=self.next_id("svc"),
                ticket_id=ticket_id,
                kind=kind,
                due_at=due_at,
            )
            fate = rng.random()
            if fate < 0.9:
                done_at = made_at + int((due_at - made_at) * (rng.uniform(0.1, 0.9) if fate < 0.75 else 1.5))
                if kind == "CALLBACK":
                    self.emit("CallbackMade", customer, done_at, "fulfilment", ticket_id=ticket_id)
                else:
                    self.emit(
                        "RefundIssued",
                        customer,
                        done_at,
                        "fulfilment",
                        ticket_id=ticket_id,
                        amount=round(rng.uniform(10, 200), 2),
                    )
                last = max(last, done_at)
        if rng.random() < 0.8:
            resolved_at = last + rng.randint(2, 48) * HOUR_MS
            self.emit("TicketResolved", customer, resolved_at, "service", ticket_id=ticket_id)
            if rng.random() < 0.7:
                self.emit(
                    "SatisfactionRated",
                    customer,
                    resolved_at + rng.randint(1, 24) * HOUR_MS,
                    "service",
                    ticket_id=ticket_id,
                    score=rng.choices((1, 2, 3, 4, 5), (10, 10, 15, 30, 35))[0],
                )

    def drain_before(self, moment: int) -> Iterator[dict[str, Any]]:
        pending = self.pending
        while pending and pending[0][0] < moment:
            yield heapq.heappop(pending)[2]


def simulate_events(
    customers: int = 200, days: int = 30, seed: int = 0, start_ms: int = DEFAULT_START_MS
) -> Iterator[dict[str, Any]]:
    """Yield a synthetic company's input events as decoded-event dicts, in publication order.

    Optional fields are present with None; timestamps are epoch ms. Stories that start within ``days``
    run to their end, so the last events fall some days after ``start_ms + days``.
    """
    company = _Company(customers, seed, start_ms)
    for product in PRODUCTS:
        on_hand = company.rng.randint(50, 500)
        company.stock[product] = on_hand
        company.emit("StockChanged", None, start_ms, "fulfilment", product=product, on_hand=on_hand)
    for product in PRODUCTS[:5]:
        company.publish_claim(start_ms + 1000, product, days)
    for day in range(days):
        day_start = start_ms + day * DAY_MS
        company.company_day(day_start, days - day)
        for customer in company.customers:
            company.customer_day(customer, day_start)
        yield from company.drain_before(day_start + DAY_MS)
    yield from company.drain_before(2**62)
