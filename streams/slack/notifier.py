"""The notifier: ``alignment.alerts`` in, one Slack message per cause out.

Order of work for every poll: group new alerts by ``group_key`` (a group is due ``window_s`` after its
first alert), post due groups in the order they opened, remember their dedup keys, then commit the
offsets whose alerts are all posted or set aside. A crash replays uncommitted alerts; the remembered
dedup keys (a compacted Kafka topic, so they survive restarts and moves) keep them out of Slack a
second time.

No alert and no answer from Slack stops the notifier (SPEC §6):
- Refused for good (a 4xx other than 408/429, or a group the renderer cannot turn into a message):
  the group is set aside. Every alert of it goes to the dead-letter topic, as the worker's dead letters
  do: reason ``slack_refused`` (or ``slack_unrenderable``), Slack's status and body in the detail, the
  alert's own topic, partition, offset, key and bytes, so ``promise-ledger dlq`` can redrive the whole
  group after a fix. Its offsets become committable and the groups behind it are posted next. A
  destination-wide refusal (404 ``no_service``: the webhook was removed) therefore dead-letters every
  group until it is fixed, which is where redrive picks them up.
- Transient (timeouts, connection errors, 5xx, 429): the group stays first in line and the webhook is
  left alone for a backoff that doubles per consecutive failure, with jitter, capped, and never shorter
  than Slack's Retry-After. Why the groups behind wait too: there is one destination, and these
  failures are the destination's (rate limit, outage), not the payload's, so the next group would meet
  the same answer; waiting keeps groups in order and loses none. Polling goes on meanwhile.
- Kafka not confirming the dead letters or the remembered keys: as transient; nothing is committed,
  and a group Slack already took is not posted again, only remembered again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from streams import codec
from streams.commits import commit_or_defer
from streams.settings import ALERTS_TOPIC
from streams.slack.message import AlertGroup, render
from streams.slack.text import short_key
from streams.slack.transport import DeliveryFailed, DeliveryRefused, WebhookTransport

log = logging.getLogger(__name__)

MESSAGES_SENT = Counter("ledger_slack_messages_total", "Slack messages accepted by the webhook")
ALERTS_SENT = Counter("ledger_slack_alerts_total", "Alerts delivered inside Slack messages")
DUPLICATES_SKIPPED = Counter("ledger_slack_duplicates_skipped_total", "Alerts already delivered")
DELIVERY_FAILURES = Counter("ledger_slack_delivery_failures_total", "Messages Slack did not accept (retried)")
GROUPS_SET_ASIDE = Counter(
    "ledger_slack_groups_set_aside_total",
    "Alert groups refused for good and dead-lettered",
    ["reason", "status"],
)
ALERTS_DEAD_LETTERED = Counter(
    "ledger_slack_dead_letters_total", "Alerts sent to the dead-letter topic by the notifier", ["reason"]
)
OPEN_GROUPS = Gauge("ledger_slack_open_groups", "Alert groups waiting for their window to close")

_DETAIL_MAX = 1000  # as the worker's dead letters
_MAX_RETRY_AFTER_S = 3600.0  # a Retry-After past this is a broken header, not a plan


class SentKeys(Protocol):
    """Dedup keys already delivered, remembered across restarts."""

    def __contains__(self, dedup_key: object) -> bool: ...

    def remember(self, dedup_keys: Iterable[str]) -> None:
        """Durable before it returns; raises when it could not be made so."""
        ...


class DeadLetters(Protocol):
    """The dead-letter topic: (key, encoded ``DeadLetter``) records, durable before ``publish`` returns;
    raises when they could not be made so."""

    def publish(self, records: Sequence[tuple[bytes | None, bytes]]) -> None: ...


@dataclass(frozen=True, slots=True)
class _Position:
    partition: Any  # a kafka TopicPartition in production
    offset: int
    key: bytes | None
    value: bytes | None  # the alert as consumed, byte for byte, for its dead letter


@dataclass(slots=True)
class _OpenGroup:
    group: AlertGroup
    opened_at: float
    positions: list[_Position]


class _Outcome(Enum):
    POSTED = "posted"
    SET_ASIDE = "set aside"
    BLOCKED = "blocked"  # try again after the backoff


class Notifier:
    def __init__(
        self,
        transport: WebhookTransport,
        sent: SentKeys,
        dead_letters: DeadLetters,
        *,
        window_s: float = 10.0,
        retry_after_failure_s: float = 5.0,
        max_backoff_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._transport = transport
        self._sent = sent
        self._dead_letters = dead_letters
        self._window_s = window_s
        self._retry_after_failure_s = retry_after_failure_s
        self._max_backoff_s = max_backoff_s
        self._monotonic = monotonic
        self._wall_clock_ms = wall_clock_ms
        self._jitter = jitter
        self._open: dict[str, _OpenGroup] = {}  # insertion order = the order groups opened
        self._posted: list[_OpenGroup] = []  # in Slack; their keys not yet confirmed remembered
        self._in_flight: set[str] = set()  # dedup keys of open and posted groups
        self._unreadable: list[_OpenGroup] = []  # undecodable records whose dead letter is owed
        self._pending: dict[Any, set[int]] = {}  # offsets not yet safe to commit, per partition
        self._next_offset: dict[Any, int] = {}
        self._blocked_until = 0.0
        self._failures = 0  # consecutive transient failures, for the backoff

    def add(
        self,
        alert: Mapping[str, Any],
        partition: Any,
        offset: int,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
    ) -> None:
        """One consumed alert; ``key`` and ``value`` are its record's bytes, kept for a dead letter."""
        self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset + 1)
        dedup_key = alert["dedup_key"]
        if dedup_key in self._sent or dedup_key in self._in_flight:
            DUPLICATES_SKIPPED.inc()
            return
        group_key = alert["group_key"]
        open_group = self._open.get(group_key)
        if open_group is None:
            open_group = _OpenGroup(AlertGroup(group_key), self._monotonic(), [])
            self._open[group_key] = open_group
        open_group.group.alerts.append(alert)
        open_group.positions.append(_Position(partition, offset, key, value))
        self._pending.setdefault(partition, set()).add(offset)
        self._in_flight.add(dedup_key)
        OPEN_GROUPS.set(len(self._open))

    def add_undecodable(
        self, partition: Any, offset: int, *, key: bytes | None, value: bytes | None, error: str
    ) -> None:
        """A record of the alerts topic that is no alert: dead-lettered, never dropped silently; its
        offset is committable once Kafka confirmed the dead letter."""
        self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset + 1)
        self._pending.setdefault(partition, set()).add(offset)
        self._unreadable.append(
            _OpenGroup(
                AlertGroup(f"undecodable:{offset}"),
                self._monotonic(),
                [_Position(partition, offset, key, value)],
            )
        )
        self._set_aside_unreadable(error)

    def _set_aside_unreadable(self, error: str = "not an alert") -> bool:
        while self._unreadable:
            if self._set_aside(self._unreadable[0], "undecodable_alert", "-", error) is _Outcome.BLOCKED:
                return False
            self._unreadable.pop(0)
        return True

    def send_due(self, *, everything: bool = False) -> int:
        """Post every group whose window has closed, oldest first. A transient failure ends the round
        (groups reach Slack in order); a permanent refusal sets its group aside and the round goes on.
        Returns the number of messages sent."""
        if self._monotonic() < self._blocked_until or not self._remember_posted():
            return 0
        if not self._set_aside_unreadable():
            return 0
        sent_messages = 0
        for group_key, open_group in list(self._open.items()):
            if not everything and self._monotonic() - open_group.opened_at < self._window_s:
                break
            outcome = self._deliver(open_group)
            if outcome is _Outcome.BLOCKED:
                break
            del self._open[group_key]
            if outcome is _Outcome.POSTED:
                sent_messages += 1
                self._posted.append(open_group)
                if not self._remember_posted():
                    break
        OPEN_GROUPS.set(len(self._open))
        return sent_messages

    def _deliver(self, open_group: _OpenGroup) -> _Outcome:
        group = open_group.group
        try:
            payload = render(group)
        except Exception as error:  # a renderer bug must not hold up every group behind this one
            return self._set_aside(open_group, "slack_unrenderable", "-", f"{type(error).__name__}: {error}")
        try:
            self._transport.post(payload)
        except DeliveryRefused as refusal:
            self._failures = 0  # Slack answered: the destination is up
            detail = f"Slack answered HTTP {refusal.status}: {refusal.body}"
            return self._set_aside(open_group, "slack_refused", str(refusal.status), detail)
        except DeliveryFailed as failure:
            DELIVERY_FAILURES.inc()
            delay = self._back_off(failure.retry_after_s)
            log.warning(
                "Slack did not take group %s (%s); retrying in %.1f s",
                short_key(group.group_key),
                failure,
                delay,
            )
            return _Outcome.BLOCKED
        self._failures = 0
        MESSAGES_SENT.inc()
        ALERTS_SENT.inc(len(group.alerts))
        return _Outcome.POSTED

    def _set_aside(self, open_group: _OpenGroup, reason: str, status: str, detail: str) -> _Outcome:
        """Every alert of the group to the dead-letter topic, each with its own position and bytes."""
        group = open_group.group
        detail = f"{detail} (group {short_key(group.group_key)}, {len(group.alerts)} alerts)"[:_DETAIL_MAX]
        now_ms = self._wall_clock_ms()
        records = [
            (
                position.key,
                codec.encode_dead_letter(
                    {
                        "reason": reason,
                        "detail": detail,
                        "topic": getattr(position.partition, "topic", ALERTS_TOPIC),
                        "partition": getattr(position.partition, "partition", -1),
                        "offset": position.offset,
                        "key": position.key,
                        "value": position.value,
                        "dead_lettered_at": now_ms,
                    }
                ),
            )
            for position in open_group.positions
        ]
        try:
            self._dead_letters.publish(records)
        except Exception as error:  # Kafka away: keep the group, nothing is committed past it
            delay = self._back_off(None)
            log.warning(
                "dead letters of group %s not confirmed by Kafka (%s); retrying in %.1f s",
                short_key(group.group_key),
                type(error).__name__,
                delay,
            )
            return _Outcome.BLOCKED
        GROUPS_SET_ASIDE.labels(reason, status).inc()
        ALERTS_DEAD_LETTERED.labels(reason).inc(len(records))
        self._release(open_group)
        log.error("group set aside, %d alerts dead-lettered as %s: %s", len(records), reason, detail)
        return _Outcome.SET_ASIDE

    def _remember_posted(self) -> bool:
        """Remember the keys of the groups Slack took, oldest first; False while Kafka refuses."""
        while self._posted:
            open_group = self._posted[0]
            try:
                self._sent.remember(open_group.group.dedup_keys)
            except Exception as error:  # not committed, not posted again: remembered on a later round
                delay = self._back_off(None)
                log.warning(
                    "sent keys of group %s not confirmed by Kafka (%s); retrying in %.1f s",
                    short_key(open_group.group.group_key),
                    type(error).__name__,
                    delay,
                )
                return False
            self._posted.pop(0)
            self._release(open_group)
        return True

    def _back_off(self, retry_after_s: float | None) -> float:
        """Block the destination: exponential per consecutive failure, jittered so that notifiers do
        not retry in step, and never shorter than Slack's Retry-After (up to an hour)."""
        self._failures += 1
        ceiling = min(self._max_backoff_s, self._retry_after_failure_s * 2 ** min(self._failures - 1, 30))
        delay = ceiling * (0.5 + self._jitter() / 2)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, _MAX_RETRY_AFTER_S))
        self._blocked_until = self._monotonic() + delay
        return delay

    def _release(self, open_group: _OpenGroup) -> None:
        """The group is done (in Slack and remembered, or dead-lettered): its offsets may be committed."""
        self._in_flight.difference_update(open_group.group.dedup_keys)
        for position in open_group.positions:
            self._pending[position.partition].discard(position.offset)

    def committable(self) -> dict[Any, int]:
        """Per partition, the next offset to commit: everything before it reached Slack or was set aside."""
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
                except Exception as error:  # our own topic: a corrupt record is set aside, never fatal
                    log.error(
                        "alert at %s@%d undecodable (%s)", position, record.offset, type(error).__name__
                    )
                    notifier.add_undecodable(
                        position,
                        record.offset,
                        key=record.key,
                        value=record.value,
                        error=f"{type(error).__name__}: {error}",
                    )
                    continue
                notifier.add(alert, position, record.offset, key=record.key, value=record.value)
        notifier.send_due(everything=stopping)
        offsets = {tp: offset for tp, offset in notifier.committable().items() if committed.get(tp) != offset}
        # A deferred commit is retried next round; the sent keys keep replays out of Slack.
        to_commit = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
        if offsets and commit_or_defer(consumer, to_commit):
            committed.update(offsets)
        if stopping:
            return
