"""Every alert renders to a message Slack accepts: whatever its fields hold, within Slack's limits."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from streams.slack import AlertGroup, escape, render
from streams.slack.message import MAX_FIELD, MAX_TEXT
from streams.slack.receiver import as_slack_shows_it, block_kit_problems
from streams.slack.text import cut, short_key
from tests.slack.test_notifier import CONTROL_SEQUENCE, _alert, _texts

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TEN_KB = "lamp & <!channel> " * 600
TIMES = [INT64_MIN, INT64_MAX, -(10**16), 10**16, -1, 0, 253_402_300_800_000, None]
NUMBERS = [INT64_MIN, INT64_MAX, -1, 10**5000, float("nan"), float("inf"), float("-inf"), -0.0]
TEXTS = ["", TEN_KB, "&" * 12_000, "<" * 12_000, "`" * 5_000, "@here " * 2_000, "\u202e" * 5_000]
TWENTY_THOUSAND = [f"feature-{n}" for n in range(20_000)]
OPTIONAL = ("customer_id", "promise_id", "department", "kind", "reason", "due_at", "claim_id", "product")
TEXT_FIELDS = ("group_key", "severity", "customer_id", "promise_id", "department", "kind", "reason")
TEXT_FIELDS += ("claim_id", "product", "rep_name")


def _extreme_alerts() -> list[tuple[str, dict[str, Any]]]:
    """(name, alert): one field at one extreme each, for both kinds of alert, plus None everywhere."""
    cases: list[tuple[str, dict[str, Any]]] = []
    for kind in ("PROMISE_BROKEN", "CONTRADICTION"):
        base = _alert(1, type=kind, claim_id="claim-1", customer_value=12.5)
        cases.append((f"{kind}-all-optional-None", {**base, **dict.fromkeys(OPTIONAL, None)}))
        for time_field in ("at", "due_at"):
            cases += [(f"{kind}-{time_field}={value}", {**base, time_field: value}) for value in TIMES]
        for field in ("customer_value", *TEXT_FIELDS, "due_at"):
            cases += [
                (f"{kind}-{field}-number{n}", {**base, field: value}) for n, value in enumerate(NUMBERS)
            ]
        for field in TEXT_FIELDS:
            cases += [(f"{kind}-{field}-text{n}", {**base, field: text}) for n, text in enumerate(TEXTS)]
            cases.append((f"{kind}-{field}-list", {**base, field: TWENTY_THOUSAND}))
    return cases


EXTREMES = _extreme_alerts()


def _assert_valid(payload: dict[str, Any]) -> None:
    assert block_kit_problems(payload) == []
    json.dumps(payload, allow_nan=False)
    for text in _texts(payload):
        assert not CONTROL_SEQUENCE.search(text), text[:200]


@pytest.mark.parametrize(("name", "alert"), EXTREMES, ids=[name for name, _ in EXTREMES])
def test_an_alert_from_the_extremes_of_every_field_renders_to_a_valid_message(name: str, alert: Any) -> None:
    _assert_valid(render(AlertGroup(alert["group_key"], [alert])))


def test_every_extreme_alert_in_one_group_renders_to_a_valid_message() -> None:
    _assert_valid(render(AlertGroup(TEN_KB, [alert for _, alert in EXTREMES])))


@pytest.mark.parametrize("due_at", [INT64_MAX, INT64_MIN, 10**16])
def test_a_time_outside_the_calendar_shows_its_raw_milliseconds(due_at: int) -> None:
    shown = as_slack_shows_it(render(AlertGroup("g", [_alert(1, due_at=due_at)])))
    assert f"{due_at} ms since 1970-01-01 UTC" in shown


def test_a_time_at_the_calendar_edges_still_shows_as_a_date() -> None:
    shown = as_slack_shows_it(render(AlertGroup("g", [_alert(1, due_at=-62_135_596_800_000)])))
    assert "1-01-01 00:00 UTC" in shown


def test_ten_kilobyte_values_are_cut_to_slack_limits_with_an_ellipsis() -> None:
    alert = _alert(1, customer_id="c" * 10_000, reason="r" * 10_000, promise_id="p" * 10_000)
    payload = render(AlertGroup("k" * 10_000, [alert]))
    _assert_valid(payload)
    fields = payload["blocks"][1]["fields"]
    cut_fields = [item["text"] for item in fields if len(item["text"]) == MAX_FIELD]
    assert len(cut_fields) == 3 and all(text.endswith("…") or text.endswith("…`") for text in cut_fields)
    assert len(payload["blocks"][0]["text"]["text"]) <= MAX_TEXT
    assert payload["text"].endswith("…") and len(payload["text"]) == MAX_TEXT


def test_thousands_of_alerts_with_long_values_in_one_group_are_one_valid_message() -> None:
    group_key = "stockout:" + "x" * 4_000
    alerts = [_alert(n, group_key=group_key, reason=TEN_KB, product=TEN_KB) for n in range(5_000)]
    payload = render(AlertGroup(group_key, alerts))
    _assert_valid(payload)
    assert len(payload["blocks"]) <= 50
    assert payload["text"].startswith("5000 broken promises · stockout:xxx")
    assert "4990 more of this cause" in as_slack_shows_it(payload)


ESCAPED_SAMPLES = [
    escape("&" * 50),
    escape("a<b>&c" * 20),
    "see <https://console.example/promise/1|promise 1> and <https://console.example/promise/2|two> " * 5,
    "`" + escape("<!here> & more") * 10 + "` after",
    escape("@here " * 40),
]


@pytest.mark.parametrize("text", ESCAPED_SAMPLES)
def test_a_cut_never_splits_an_entity_or_a_link_we_wrote(text: str) -> None:
    for limit in range(1, len(text) + 2):
        kept = cut(text, limit)
        assert len(kept) <= limit
        if len(text) <= limit:
            assert kept == text
            continue
        assert kept.endswith("…") or kept.endswith("…`")
        body = kept.rstrip("`").removesuffix("…")
        assert text.startswith(body)
        assert not re.search(r"&[a-z]*$", body), (limit, body[-8:])
        assert body.count("<") == body.count(">"), (limit, body[-20:])
        assert kept.count("`") % 2 == 0 or limit < 2


def test_a_cut_text_still_cannot_ping_or_link() -> None:
    typed = "<!channel>" * 2_000
    payload = render(AlertGroup(typed, [_alert(1, customer_id=typed, reason=typed)]))
    _assert_valid(payload)


def test_a_long_group_key_has_a_short_distinct_form_for_logs() -> None:
    first, second = "k" * 4_000 + "a", "k" * 4_000 + "b"
    assert len(short_key(first)) <= 80
    assert short_key(first) != short_key(second)
    assert short_key("stockout:lamp") == "stockout:lamp"
