"""The notifier: ``alignment.alerts`` in, one Slack message per cause out.

Order of work for every poll: group new alerts by ``group_key`` (a group is due ``window_s`` after its
first alert), post due groups in the order they opened, remember their dedup keys, then commit the
offsets whose alerts are all posted. A crash replays uncommitted alerts; the remembered dedup keys
(a compacted Kafka topic, so they survive restarts and moves) keep them out of Slack a second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from streams.commits import commit_or_defer
from streams.slack.message import AlertGroup, render
from streams.slack.transport import DeliveryFailed, WebhookTransport

log = logging.getLogger(__name__)

MESSAGES_SENT = Counter("ledger_slack_messages_total", "Slack messages accepted by the webhook")
ALERTS_SENT = Counter("ledger_slack_alerts_total", "Alerts delivered inside Slack messages")
DUPLICATES_SKIPPED = Counter("ledger_slack_duplicates_skipped_total", "Alerts already delivered")
DELIVERY_FAILURES = Counter("ledger_slack_delivery_failures_total", "Messages Slack did not accept (retried)")
OPEN_GROUPS = Gauge("ledger_slack_open_groups", "Alert groups waiting for their window to close")


class SentKeys(Protocol):
    """Dedup keys already delivered, remembered across restarts."""

    def __contains__(self, dedup_key: object) -> bool: ...

    def remember(self, dedup_keys: Iterable[str]) -> None: ...


@dataclass(slots=True)
class _OpenGroup:
    group: AlertGroup
    opened_at: float
    positions: list[tuple[Any, int]]  # (topic-partition, offset) of every alert in it


class Notifier:
    def __init__(
        self,
        transport: WebhookTransport,
        sent: SentKeys,
        *,
        window_s: float = 10.0,
        retry_after_failure_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._sent = sent
        self._window_s = window_s
        self._retry_after_failure_s = retry_after_failure_s
        self._monotonic = monotonic
        self._open: dict[str, _OpenGroup] = {}  # insertion order = the order groups opened
        self._in_open_groups: set[str] = set()
        self._pending: dict[Any, list[int]] = {}  # offsets not yet safe to commit, per partition
        self._next_offset: dict[Any, int] = {}
        self._blocked_until = 0.0

    def add(self, alert: Mapping[str, Any], partition: Any, offset: int) -> None:
        self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset + 1)
        key = alert["dedup_key"]
        if key in self._sent or key in self._in_open_groups:
            DUPLICATES_SKIPPED.inc()
            return
        group_key = alert["group_key"]
        open_group = self._open.get(group_key)
        if open_group is None:
            open_group = _OpenGroup(AlertGroup(group_key), self._monotonic(), [])
            self._open[group_key] = open_group
        open_group.group.alerts.append(alert)
        open_group.positions.append((partition, offset))
        self._pending.setdefault(partition, []).append(offset)
        self._in_open_groups.add(key)
        OPEN_GROUPS.set(len(self._open))

    def send_due(self, *, everything: bool = False) -> int:
        """Post every group whose window has closed, oldest first; stop at the first that fails so
        that groups reach Slack in order. Returns the number of messages sent."""
        now = self._monotonic()
        if now < self._blocked_until:
            return 0
        sent_messages = 0
        for group_key, open_group in list(self._open.items()):
            if not everything and now - open_group.opened_at < self._window_s:
                break
            try:
                self._transport.post(render(open_group.group))
            except DeliveryFailed as failure:
                DELIVERY_FAILURES.inc()
                log.warning("Slack did not take group %r (%s); will retry", group_key, failure)
                self._blocked_until = now + self._retry_after_failure_s
                break
            self._sent.remember(open_group.group.dedup_keys)
            self._close(group_key, open_group)
            sent_messages += 1
            MESSAGES_SENT.inc()
            ALERTS_SENT.inc(len(open_group.group.alerts))
        OPEN_GROUPS.set(len(self._open))
        return sent_messages

    def _close(self, group_key: str, open_group: _OpenGroup) -> None:
        del self._open[group_key]
        self._in_open_groups.difference_update(open_group.group.dedup_keys)
        for partition, offset in open_group.positions:
            self._pending[partition].remove(offset)

    def committable(self) -> dict[Any, int]:
        """Per partition, the next offset to commit: everything before it has reached Slack."""
        return {
            partition: min(self._pending.get(partition, ()), default=next_offset)
            for partition, next_offset in self._next_offset.items()
        }

    @property
    def open_groups(self) -> int:
        return len(self._open)


class AlertConsumer(Protocol):
    def poll(self, timeout_ms: int = 0) -> Mapping[Any, list[Any]]: ...
    def commit(self, offsets: Mapping[Any, Any]) -> None: ...


def run_notifier(
    consumer: AlertConsumer,
    notifier: Notifier,
    decode_alert: Callable[[bytes], Mapping[str, Any]],
    should_stop: Callable[[], bool],
) -> None:
    """Poll alerts, send due groups, commit what reached Slack; on stop, send what is open first."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    committed: dict[Any, int] = {}
    while True:
        stopping = should_stop()
        try:
            polled = consumer.poll(timeout_ms=200)
        except KafkaError as error:
            # kafka-python raises from poll() while the broker is away; the next poll reconnects.
            if not error.retriable:
                raise
            log.warning("Kafka unavailable (%s); retrying", type(error).__name__)
            polled = {}
            time.sleep(1.0)
        for records in polled.values():
            for record in records:
                position = TopicPartition(record.topic, record.partition)
                try:
                    alert = decode_alert(record.value)
                except Exception as error:  # our own topic: a corrupt record is logged, never fatal
                    log.error(
                        "alert at %s@%d undecodable (%s)", position, record.offset, type(error).__name__
                    )
                    continue
                notifier.add(alert, position, record.offset)
        notifier.send_due(everything=stopping)
        offsets = {tp: offset for tp, offset in notifier.committable().items() if committed.get(tp) != offset}
        # A deferred commit is retried next round; the sent keys keep replays out of Slack.
        to_commit = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
        if offsets and commit_or_defer(consumer, to_commit):
            committed.update(offsets)
        if stopping:
            return
