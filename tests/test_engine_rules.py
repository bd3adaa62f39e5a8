"""Table-driven tests per rule family of SPEC §4: fixtures in tests/fixtures/engine, outcomes reasoned
from the SPEC (comments give the arithmetic)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from streams.engine import AlignmentEvent, EngineConfig, alert_for
from tests.helpers import ms, only, outline, run_fixture

OPENED, KEPT, BROKEN, AT_RISK, LATE = (
    "PROMISE_OPENED",
    "PROMISE_KEPT",
    "PROMISE_BROKEN",
    "AT_RISK",
    "FULFILLED_LATE",
)
UNTIL = "2026-04-01T00:00:00Z"

# (fixture, customer, expected outline) -- made 03-01T00, due 03-10T00: 75 % of 9 days is 03-07T18.
OUTLINES = [
    # 6 units with SSO by order id (its OrderPlaced carried the deal), 4 more exactly at due: on time.
    (
        "delivery.jsonl",
        "c-kept",
        [(OPENED, "k-kept", None), (AT_RISK, "k-kept", "DEADLINE_NEAR"), (KEPT, "k-kept", None)],
    ),
    # 5 of 10 by due, the other 5 two days late.
    (
        "delivery.jsonl",
        "c-short",
        [
            (OPENED, "k-short", None),
            (AT_RISK, "k-short", "DEADLINE_NEAR"),
            (BROKEN, "k-short", "SHORT"),
            (LATE, "k-short", None),
        ],
    ),
    (
        "delivery.jsonl",
        "c-feature",
        [
            (OPENED, "k-feature", None),
            (AT_RISK, "k-feature", "DEADLINE_NEAR"),
            (BROKEN, "k-feature", "MISSING_FEATURE"),
        ],
    ),
    # Another product for the deal, and the product under an unknown order without a deal: nothing counts.
    (
        "delivery.jsonl",
        "c-none",
        [(OPENED, "k-none", None), (AT_RISK, "k-none", "DEADLINE_NEAR"), (BROKEN, "k-none", "NOT_DELIVERED")],
    ),
    # Informed move to 03-15: the window is 14 days, 75 % at 03-11T12; delivered 03-12: kept late-ish.
    (
        "amendments.jsonl",
        "c-informed",
        [(OPENED, "k-informed", None), (AT_RISK, "k-informed", "DEADLINE_NEAR"), (KEPT, "k-informed", None)],
    ),
    # Uninformed move: judged on 03-10.
    (
        "amendments.jsonl",
        "c-uninformed",
        [
            (OPENED, "k-uninformed", None),
            (AT_RISK, "k-uninformed", "UNINFORMED_CHANGE"),
            (AT_RISK, "k-uninformed", "DEADLINE_NEAR"),
            (BROKEN, "k-uninformed", "NOT_DELIVERED"),
            (LATE, "k-uninformed", None),
        ],
    ),
    # 6 delivered, then the quantity is lowered to 6 with the customer informed: kept at the amendment.
    ("amendments.jsonl", "c-quantity", [(OPENED, "k-quantity", None), (KEPT, "k-quantity", None)]),
    # An amendment after the due time changes nothing.
    (
        "amendments.jsonl",
        "c-too-late",
        [
            (OPENED, "k-too-late", None),
            (AT_RISK, "k-too-late", "DEADLINE_NEAR"),
            (BROKEN, "k-too-late", "NOT_DELIVERED"),
            (LATE, "k-too-late", None),
        ],
    ),
    # Sign-off due 24 h after 03-01T00.
    (
        "signoff.jsonl",
        "c-never",
        [(OPENED, "k-never", None), (AT_RISK, "k-never", "UNAPPROVED"), (KEPT, "k-never", None)],
    ),
    (
        "signoff.jsonl",
        "c-late",
        [(OPENED, "k-late", None), (AT_RISK, "k-late", "UNAPPROVED"), (KEPT, "k-late", None)],
    ),
    ("signoff.jsonl", "c-on-the-dot", [(OPENED, "k-on-the-dot", None), (KEPT, "k-on-the-dot", None)]),
    # IN_STOCK: 24 h from the order at 03-01T03; shipped 03-01T20.
    ("shipping_stock.jsonl", "c-a", [(OPENED, "cl-in:o-a", None), (KEPT, "cl-in:o-a", None)]),
    # SHIPS_WITHIN 48 h: due 03-03T03, 75 % at 03-02T15; gadget out of stock at 03-01T12 (twice: one at-risk).
    (
        "shipping_stock.jsonl",
        "c-b",
        [
            (OPENED, "cl-48:o-b", None),
            (AT_RISK, "cl-48:o-b", "STOCKOUT"),
            (AT_RISK, "cl-48:o-b", "DEADLINE_NEAR"),
            (BROKEN, "cl-48:o-b", "NOT_SHIPPED"),
            (LATE, "cl-48:o-b", None),
        ],
    ),
    ("shipping_stock.jsonl", "c-c", []),  # never saw a claim
    ("shipping_stock.jsonl", "c-d", []),  # saw a claim withdrawn before ordering
    # Claim at stock 0; stockout under a claim; 0 again (no news); back to 5; 0 again (news).
    (
        "shipping_stock.jsonl",
        None,
        [
            ("CONTRADICTION", "cl-gizmo", "CLAIM_WITHOUT_STOCK"),
            ("CONTRADICTION", "cl-48", "STOCKOUT"),
            ("CONTRADICTION", "cl-48", "STOCKOUT"),
        ],
    ),
    (
        "service.jsonl",
        "c-s1",
        [
            ("COMPLAINT_ATTRIBUTED", "t-1", "SLOW_SERVICE"),
            (OPENED, "t-1:first-reply", None),
            # At 05:00 the callback promise and the reply: what makes a promise comes first at a tie.
            (OPENED, "sp-call", None),
            (KEPT, "t-1:first-reply", None),
            (OPENED, "sp-refund", None),
            (KEPT, "sp-call", None),
            (AT_RISK, "sp-refund", "DEADLINE_NEAR"),
            (BROKEN, "sp-refund", "NOT_DONE"),
            (LATE, "sp-refund", None),
            ("RECOVERED", "t-1", "SLOW_SERVICE"),  # rated 3 first: only the 5 recovers
        ],
    ),
    (
        "service.jsonl",
        "c-s2",
        [
            ("COMPLAINT_ATTRIBUTED", "t-2", "OTHER"),
            (OPENED, "t-2:first-reply", None),
            (AT_RISK, "t-2:first-reply", "DEADLINE_NEAR"),
            (BROKEN, "t-2:first-reply", "NO_REPLY"),
            (LATE, "t-2:first-reply", None),
            ("RECOVERED", "t-2", "OTHER"),  # rated 4 before it was resolved
        ],
    ),
    (
        "style_tone.jsonl",
        "c-rep",
        [
            (OPENED, "k-rep", None),
            (KEPT, "k-rep", None),
            ("COMPLAINT_ATTRIBUTED", "t-rep", "OTHER"),
            (OPENED, "t-rep:first-reply", None),
            (KEPT, "t-rep:first-reply", None),
            ("STYLE_MISMATCH", "t-rep", None),
            ("TONE", "t-rep", None),
            ("TONE", "t-rep", None),
        ],
    ),
    (
        "style_tone.jsonl",
        "c-no-rep",
        [
            ("COMPLAINT_ATTRIBUTED", "t-no-rep", "OTHER"),
            (OPENED, "t-no-rep:first-reply", None),
            (KEPT, "t-no-rep:first-reply", None),
            ("TONE", "t-no-rep", None),
        ],
    ),
]


@pytest.mark.parametrize(("fixture", "customer", "expected"), OUTLINES, ids=lambda v: str(v)[:24])
def test_rule_outcomes(
    fixture: str, customer: str | None, expected: list[tuple[str, str, str | None]]
) -> None:
    assert outline(run_fixture(fixture, until=UNTIL), customer) == expected


def test_delivery_times_and_delays() -> None:
    events = run_fixture("delivery.jsonl", until=UNTIL)
    assert only(events, KEPT, "k-kept").at == ms("03-10T00:00")  # exactly at due is on time
    assert only(events, AT_RISK, "k-kept").at == ms("03-07T18:00")
    broken = only(events, BROKEN, "k-short")
    assert (broken.at, broken.cause_event_id, broken.severity) == (ms("03-10T00:00"), None, "MEDIUM")
    assert only(events, BROKEN, "k-none").severity == "HIGH"
    late = only(events, LATE, "k-short")
    assert (late.at, late.delay_s, late.cause_event_id) == (ms("03-12T00:00"), 2 * 86_400, "d-13")


def test_amendment_terms() -> None:
    events = run_fixture("amendments.jsonl", until=UNTIL)
    assert only(events, AT_RISK, "k-informed").at == ms("03-11T12:00")
    assert only(events, KEPT, "k-informed").due_at == ms("03-15T00:00")
    uninformed = [e for e in events if e.promise_id == "k-uninformed"]
    assert {e.due_at for e in uninformed} == {ms("03-10T00:00")}
    assert uninformed[1].at == ms("03-05T00:00") and uninformed[1].cause_event_id == "a-12"
    assert only(events, LATE, "k-uninformed").delay_s == 2 * 86_400
    assert only(events, KEPT, "k-quantity").at == ms("03-03T00:00")
    assert only(events, LATE, "k-too-late").delay_s == 5 * 86_400


def test_signoff_fires_at_the_window_end() -> None:
    events = run_fixture("signoff.jsonl", until=UNTIL)
    assert only(events, AT_RISK, "k-late").at == ms("03-02T00:00")


def test_shipping_and_contradictions() -> None:
    events = run_fixture("shipping_stock.jsonl", until=UNTIL)
    assert only(events, OPENED, "cl-in:o-a").due_at == ms("03-02T03:00")
    stockout = [e for e in events if e.type == AT_RISK and e.reason == "STOCKOUT"]
    assert [(e.at, e.cause_event_id) for e in stockout] == [(ms("03-01T12:00"), "g-6")]
    assert only(events, LATE, "cl-48:o-b").delay_s == 86_400
    contradictions = [e for e in events if e.type == "CONTRADICTION"]
    assert [(e.product, e.department, e.severity, e.cause_event_id) for e in contradictions] == [
        ("gizmo", "MARKETING", "HIGH", "g-4"),
        ("gadget", "MARKETING", "HIGH", "g-6"),
        ("gadget", "MARKETING", "HIGH", "g-9"),
    ]
    assert contradictions[1].alignment_id != contradictions[2].alignment_id
    alert = alert_for(contradictions[0])
    assert alert is not None and alert.dedup_key == "contradiction:cl-gizmo:gizmo"


def test_service_promise_times() -> None:
    events = run_fixture("service.jsonl", until=UNTIL)
    assert only(events, AT_RISK, "sp-refund").at == ms("03-05T00:00")  # 75 % of 5 days after 03-01T06
    assert only(events, BROKEN, "sp-refund").severity == "HIGH"
    assert only(events, LATE, "t-2:first-reply").delay_s == 10 * 3600
    assert only(events, "RECOVERED", "t-1").cause_event_id == "v-9"


ATTRIBUTIONS = [
    # through the order: its shipping promise (made 03:00) and its deal's commitment (made 01:00, earliest)
    ("t-h", "SALES", ["cl-1:o-h", "k-h"], "Chen Wei", None),
    ("t-s", "SALES", ["k-s"], "Ben Okafor", None),
    # the customer saw the claim before the commitment: the chain starts in marketing
    ("t-m", "MARKETING", ["k-m"], "Ana Ruiz", "cl-1"),
    # no order or deal: recent trouble, newest first (k-f2 at risk 03-15T07, k-f1 broken 03-05); k-f3 kept
    ("t-f", "SALES", ["k-f2", "k-f1"], None, None),
    ("t-u", "UNATTRIBUTED", [], None, None),
]


@pytest.mark.parametrize(("ticket", "root", "promise_ids", "rep", "claim"), ATTRIBUTIONS)
def test_complaint_attribution(
    ticket: str, root: str, promise_ids: list[str], rep: str | None, claim: str | None
) -> None:
    event = only(run_fixture("attribution.jsonl"), "COMPLAINT_ATTRIBUTED", ticket)
    assert (event.root_department, event.promise_ids, event.rep_name, event.claim_id) == (
        root,
        promise_ids,
        rep,
        claim,
    )


def test_style_and_tone() -> None:
    events = run_fixture("style_tone.jsonl")
    style = only(events, "STYLE_MISMATCH", "t-rep")
    assert (style.rep_name, style.cause_event_id) == ("Ana Ruiz", "r-3")
    tones = [e for e in events if e.type == "TONE"]
    assert [(e.cause_event_id, e.phrases, e.agent_name) for e in tones] == [
        ("r-4", ["unfortunately", "I'm afraid", "our policy"], None),
        # c-no-rep's events come after the clock passed their time + grace: late, applied as they come,
        # while r-5 (03:00) is still held back for arrivals within the grace period.
        ("n-2", ["obviously", "our procedure"], None),
        ("r-5", ["unfortunately", "obviously", "wrong department"], "Hana"),
    ]
    assert len({e.alignment_id for e in tones}) == 3


def test_tone_phrases_are_configurable() -> None:
    config = EngineConfig(tone_phrases=("that is our policy", "called"))
    tones = [e for e in run_fixture("style_tone.jsonl", config=config) if e.type == "TONE"]
    assert [(e.cause_event_id, e.phrases) for e in tones] == [
        ("r-4", ["that is our policy"]),
        ("r-5", ["called"]),
    ]


@pytest.mark.parametrize(
    ("ticket", "customer", "value", "severity"),
    [
        ("t-rich", "c-rich", 60_000.0, "HIGH"),
        ("t-mid", "c-mid", 15_000.0, "MEDIUM"),
        ("t-small", "c-small", 0.0, "LOW"),
    ],
)
def test_customer_value_raises_severity(ticket: str, customer: str, value: float, severity: str) -> None:
    broken = only(run_fixture("value.jsonl", until=UNTIL), BROKEN, f"{ticket}:first-reply")
    assert broken.severity == severity  # a missed first reply is LOW; 10k raises one level, 50k two
    alert = alert_for(broken, customer_value=value)
    assert alert is not None
    assert (alert.alert_id, alert.dedup_key, alert.severity, alert.customer_id, alert.customer_value) == (
        broken.alignment_id,
        f"{ticket}:first-reply",
        severity,
        customer,
        value,
    )
    assert alert.group_key == "SERVICE:FIRST_REPLY"


def test_only_broken_and_contradiction_raise_alerts() -> None:
    events = run_fixture("shipping_stock.jsonl", until=UNTIL)
    alerted = {e.type for e in events if alert_for(e) is not None}
    assert alerted == {"PROMISE_BROKEN", "CONTRADICTION"}
    broken = only(events, BROKEN, "cl-48:o-b")
    assert alert_for(broken).group_key == "stockout:gadget"  # type: ignore[union-attr]


def test_alignment_events_are_frozen_and_serialise_as_their_dict() -> None:
    tone = AlignmentEvent("id", "TONE", "c-1", 5, phrases=["obviously"])
    for event in [*run_fixture("attribution.jsonl", until=UNTIL), tone]:
        # What replay writes, key order included.
        assert orjson.dumps(event) == orjson.dumps(event.to_dict())
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.reason = "changed"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.at = 6  # type: ignore[misc]
