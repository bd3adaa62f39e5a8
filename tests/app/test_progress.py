"""What the worker may conclude from end offsets asked of the broker: the merge's and the idle clock's
only evidence (streams/app/progress.py)."""

from __future__ import annotations

from streams.app.progress import NOT_KNOWN, InputProgress

TOPICS = ("sales", "service")


def progress() -> InputProgress:
    return InputProgress(TOPICS, delivery_bound_ms=1_000, quiet_ms=2_000)


def test_a_topic_read_to_the_end_asked_at_w_is_complete_through_w_minus_the_delivery_bound() -> None:
    known = progress()
    assert known.complete_through("sales", 0, position=5) == NOT_KNOWN
    known.asked({("sales", 0): 5}, asked_at_ms=10_000)
    assert known.complete_through("sales", 0, position=4) == NOT_KNOWN  # a record before 5 is on its way
    assert known.complete_through("sales", 0, position=5) == 9_000
    known.asked({("sales", 0): 9}, asked_at_ms=11_000)  # a burst landed since: the old proof is gone
    assert known.complete_through("sales", 0, position=5) == NOT_KNOWN


def test_caught_up_needs_every_topic_read_to_fresh_ends_and_a_quiet_partition() -> None:
    known = progress()
    known.heard(0, now_ms=9_000)
    known.asked({("sales", 0): 5, ("service", 0): 3}, asked_at_ms=10_000)
    assert known.caught_up_at(0, {"sales": 5, "service": 3}) is None  # heard 1 s before: not quiet
    known.asked({("sales", 0): 5, ("service", 0): 3}, asked_at_ms=11_000)
    assert known.caught_up_at(0, {"sales": 5, "service": 2}) is None  # a record not received yet
    assert known.caught_up_at(0, {"sales": 5}) is None  # service never read
    assert known.caught_up_at(0, {"sales": 5, "service": 3}) == 11_000


def test_a_record_received_after_the_ask_cancels_the_proof_until_the_next_quiet_ask() -> None:
    known = progress()
    known.asked({("sales", 0): 5, ("service", 0): 3}, asked_at_ms=20_000)
    known.heard(0, now_ms=20_050)  # the first record of a burst, appended just after the ask
    assert known.caught_up_at(0, {"sales": 6, "service": 3}) is None
    known.asked({("sales", 0): 6, ("service", 0): 3}, asked_at_ms=22_050)
    assert known.caught_up_at(0, {"sales": 6, "service": 3}) == 22_050


def test_partitions_are_judged_apart_and_forgotten_on_revocation() -> None:
    known = progress()
    known.asked({("sales", 1): 0, ("service", 1): 0, ("sales", 2): 0, ("service", 2): 0}, asked_at_ms=5_000)
    known.heard(2, now_ms=4_999)
    assert known.caught_up_at(1, {}) == 5_000
    assert known.caught_up_at(2, {}) is None
    known.forget({1})
    assert known.caught_up_at(1, {}) is None
