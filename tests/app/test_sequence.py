"""The worker's guard against records the consumer skipped (streams/app/sequence.py)."""

from __future__ import annotations

from streams.app.sequence import OffsetSequencer, Verdict


def test_records_in_order_pass_and_second_copies_are_dropped() -> None:
    sequencer = OffsetSequencer()
    sequencer.resume("p0", 10, now=0)
    assert [sequencer.admit("p0", offset, now=0) for offset in (10, 11, 11, 10, 12)] == [
        Verdict.NEXT,
        Verdict.NEXT,
        Verdict.SECOND_COPY,
        Verdict.SECOND_COPY,
        Verdict.NEXT,
    ]


def test_a_gap_sends_the_partition_back_once_until_the_gap_is_fetched_again() -> None:
    sequencer = OffsetSequencer(retry_after_s=1.0)
    sequencer.resume("p0", 0, now=0)
    assert sequencer.admit("p0", 0, now=0) is Verdict.NEXT
    assert sequencer.admit("p0", 5, now=0) is Verdict.PAST_A_GAP
    assert sequencer.rewind_to("p0", now=0) == 1
    assert sequencer.admit("p0", 6, now=0.5) is Verdict.PAST_A_GAP  # fetched before the seek
    assert sequencer.rewind_to("p0", now=0.5) is None
    assert sequencer.admit("p0", 7, now=1.5) is Verdict.PAST_A_GAP  # the seek was lost: again
    assert sequencer.rewind_to("p0", now=1.5) == 1
    assert [sequencer.admit("p0", offset, now=2) for offset in (1, 2)] == [Verdict.NEXT, Verdict.NEXT]


def test_a_partition_quiet_short_of_its_end_is_fetched_again_from_what_it_owes() -> None:
    sequencer = OffsetSequencer(quiet_after_s=2.0)
    sequencer.resume("p0", 0, now=0)
    sequencer.resume("p1", 0, now=0)
    sequencer.admit("p0", 0, now=0)
    sequencer.admit("p1", 0, now=0)
    ends = {"p0": 5, "p1": 1}  # p1 has everything; p0's records 1..4 never came
    assert sequencer.stalled(ends, now=1.9) == {}
    assert sequencer.stalled(ends, now=2.0) == {"p0": 1}
    assert sequencer.stalled(ends, now=3.0) == {}  # just sent back: give the seek time
    assert sequencer.stalled(ends, now=4.0) == {"p0": 1}
    sequencer.admit("p0", 1, now=4.5)
    assert sequencer.stalled({"p0": 2}, now=10) == {}


def test_a_revoked_partition_is_forgotten() -> None:
    sequencer = OffsetSequencer()
    sequencer.resume("p0", 3, now=0)
    sequencer.forget({"p0"})
    assert not sequencer.knows("p0")
