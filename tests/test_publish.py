"""streams.publish: record timestamps give consumers the publication order, also across publishers."""

from __future__ import annotations

import pytest

from streams.settings import INPUT_TOPICS

pytestmark = pytest.mark.stack


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
