"""The story of one customer from input-event files: the engine replays them in-process, no stack needed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from streams.codec import DecodeError, default_codec, read_container
from streams.contract import (
    DEFAULT_LIMITS,
    ClaimPublished,
    InputEvent,
    InvalidEvent,
    ValueLimits,
    decode_json_line,
    event_to_decoded,
    parse_event,
)
from streams.engine import ConflictingDuplicate, EngineConfig, PromiseEngine, TraceRecord, alert_for
from streams.explain.story import Story, build_story
from streams.topology import PartitionedEngines

AVRO_CONTAINER_MAGIC = b"Obj\x01"

#: input-event fields that name something `explain` accepts as its ID
_ID_FIELDS = ("commitment_id", "promise_id", "ticket_id")


class SourceError(Exception):
    """The source cannot be read; the message is one line (``FILE:LINE: reason`` for a bad event)."""


def read_events(paths: Sequence[str], limits: ValueLimits = DEFAULT_LIMITS) -> Iterator[InputEvent]:
    """The input events of JSON-lines or Avro container files, in file order, valid by ``limits``.

    A rejected line raises `SourceError`: a story told from part of the log would mislead.
    """
    for path in paths:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the generator is drained
        except OSError as error:
            raise SourceError(f"cannot read {path}: {error.strerror}") from None
        with handle:
            if handle.read(4) == AVRO_CONTAINER_MAGIC:
                handle.seek(0)
                yield from _container_events(path, handle, limits)
                continue
            handle.seek(0)
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield parse_event(decode_json_line(line), limits)
                except InvalidEvent as error:
                    raise SourceError(f"{path}:{number}: {error}") from None


def _container_events(path: str, handle: Any, limits: ValueLimits) -> Iterator[InputEvent]:
    number = 0
    try:
        for number, decoded in enumerate(read_container(handle, default_codec()), start=1):  # noqa: B007
            yield parse_event(decoded, limits)
    except (DecodeError, InvalidEvent) as error:
        raise SourceError(f"{path}:{number + 1}: {error}") from None


@dataclass(slots=True)
class _Pass:
    """What one replay collected for ``target`` (a customer id), and whom ``subject`` names if not."""

    target: str
    subject: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what the engine said each of the target's input events did to its promises
    trace: list[TraceRecord] = field(default_factory=list)
    named_customer: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.inputs or self.ledger)


def _keep_target(target: str, kept: list[TraceRecord], record: TraceRecord) -> None:
    if record.customer_id == target:
        kept.append(record)


@dataclass(frozen=True, slots=True)
class ReplaySource:
    paths: Sequence[str]
    config: EngineConfig = field(default_factory=EngineConfig)
    #: fire every deadline before this time at the end (epoch ms), as `replay --until` does
    until: int | None = None
    #: one engine per partition, as the worker and `replay --partitions` run (streams/topology.py)
    partitions: int = 1

    def story(self, subject: str) -> Story | None:
        """The story of the customer ``subject`` names (customer, promise or ticket id); None if unknown."""
        first = self._replay(subject, subject)
        if first.found:
            return self._tell(first)
        if first.named_customer is None:
            return None
        return self._tell(self._replay(first.named_customer, subject))

    def _tell(self, collected: _Pass) -> Story:
        return build_story(
            collected.subject,
            collected.target,
            "replay",
            collected.ledger,
            collected.alerts,
            collected.inputs,
            collected.claims,
            collected.trace,
        )

    def _replay(self, target: str, subject: str) -> _Pass:
        collected = _Pass(target, subject)
        trace = partial(_keep_target, target, collected.trace)
        engine = PartitionedEngines(
            self.config, self.partitions, lambda config: PromiseEngine(config, trace=trace)
        )
        for event in read_events(self.paths, self.config.limits if self.config else DEFAULT_LIMITS):
            customer_id = event.customer_id
            if customer_id is None:
                if isinstance(event, ClaimPublished):
                    collected.claims.setdefault(event.claim_id, event_to_decoded(event))
            elif customer_id == target:
                collected.inputs.append(event_to_decoded(event))
            elif collected.named_customer is None and any(
                getattr(event, name, None) == subject for name in _ID_FIELDS
            ):
                collected.named_customer = customer_id
            try:
                self._collect(engine, engine.process(event), collected)
            except ConflictingDuplicate:
                continue  # the first content stands, as in replay (which reports the line)
        if self.until is not None:
            self._collect(engine, engine.advance_to(self.until), collected)
        self._collect(engine, engine.drain(), collected)
        return collected

    @staticmethod
    def _collect(engine: PartitionedEngines, outputs: list[Any], collected: _Pass) -> None:
        for output in outputs:
            customer_id = output.customer_id
            if customer_id is None:
                continue
            if customer_id == collected.target:
                collected.ledger.append(output.to_dict())
                alert = alert_for(output, engine.customer_value(customer_id))
                if alert is not None:
                    collected.alerts.append(alert.to_dict())
            elif collected.named_customer is None and collected.subject in (
                output.promise_id,
                output.ticket_id,
                *output.promise_ids,
            ):
                collected.named_customer = customer_id
