"""streams.publish: record timestamps give consumers the publication order, also across publishers."""

from __future__ import annotations

import pytest

from streams.publish import PublicationClock
from streams.settings import INPUT_TOPICS


class FakeTime:
    """Wall time that moves only when slept through."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def test_timestamps_strictly_increase_in_a_burst_and_follow_wall_time_after_it() -> None:
    fake = FakeTime(1_000.0)
    clock = PublicationClock(wall_clock_s=fake.time, sleep=fake.sleep)
    burst = [clock.next_ms() for _ in range(2_000)]  # all within one wall-clock millisecond
    assert burst == list(range(1_000_000, 1_002_000))
    assert clock.ahead_s == pytest.approx(2.0)
    fake.now_s = 1_010.0
    assert clock.next_ms() == 1_010_000 and clock.ahead_s == pytest.approx(0.001)
    assert fake.slept == []


def test_a_burst_is_slowed_down_once_it_is_max_ahead_of_the_clock() -> None:
    fake = FakeTime(1_000.0)
    clock = PublicationClock(max_ahead_ms=100, wall_clock_s=fake.time, sleep=fake.sleep)
    stamps = [clock.next_ms() for _ in range(1_000)]
    assert stamps == sorted(set(stamps))
    # Past 100 ms ahead, every event waits a millisecond: the burst never gets further ahead.
    assert max(stamp - 1_000_000 for stamp in stamps) - (fake.now_s - 1_000.0) * 1000 <= 101
    assert sum(fake.slept) == pytest.approx((1_000 - 1 - 100) / 1000, abs=0.005)  # float wall time


def test_waiting_until_passed_ends_after_the_last_timestamp() -> None:
    fake = FakeTime(1_000.0)
    clock = PublicationClock(wall_clock_s=fake.time, sleep=fake.sleep)
    last = [clock.next_ms() for _ in range(500)][-1]
    clock.wait_until_passed()
    assert fake.now_s * 1000 > last and clock.ahead_s == 0
    # A second publisher opened now stamps after every record of the first.
    assert PublicationClock(wall_clock_s=fake.time, sleep=fake.sleep).next_ms() > last


@pytest.mark.stack
def test_a_publisher_opened_after_a_burst_stamps_its_records_after_the_burst(pipeline) -> None:
    # Three thousand records go out faster than one a millisecond, so the first publisher's stamps
    # run ahead of the clock; the second one opens the moment the first has closed.
    topic = INPUT_TOPICS[0]
    burst = pipeline.publisher()
    for n in range(3_000):
        burst.send_raw(topic, b"burst %d" % n, key=b"one-customer")
    burst.close()
    follower = pipeline.publisher()
    follower.send_raw(topic, b"after the burst", key=b"one-customer")
    follower.close()

    records = pipeline.read(topic, lambda record: record, until=lambda got: len(got) >= 3_001)
    assert len(records) == 3_001
    stamps = [record.timestamp for record in records]  # one key, one partition: publication order
    assert records[-1].value == b"after the burst"
    assert stamps[-1] > max(stamps[:-1])
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
