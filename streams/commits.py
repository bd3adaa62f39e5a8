"""Committing consumer offsets without dying of a rebalance.

Our consumers commit only after their output is durable (rows in ClickHouse, messages in Slack). A
commit that fails is therefore never a loss: the records behind it are replayed after a restart or a
reassignment, and both outputs absorb replays (ReplacingMergeTree, the Slack dedup keys). So a commit
refused because the broker is away, or because the group is rebalancing, is deferred to the next one
rather than raised; only errors that say the client itself is broken propagate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

log = logging.getLogger(__name__)

# A rebalance started or finished while the commit was in flight: the next poll() rejoins the group.
REBALANCE_ERRORS = (RebalanceInProgressError, CommitFailedError, IllegalGenerationError, UnknownMemberIdError)


class Committer(Protocol):
    def commit(self, offsets: Mapping[Any, Any] | None = None) -> None: ...


def commit_or_defer(consumer: Committer, offsets: Mapping[Any, Any] | None = None) -> bool:
    """Commit ``offsets`` (or everything consumed); False if the commit must wait for a later one."""
    try:
        if offsets is None:
            consumer.commit()
        else:
            consumer.commit(offsets)
    except REBALANCE_ERRORS as error:
        log.warning("offset commit deferred: the group is rebalancing (%s)", type(error).__name__)
        return False
    except KafkaError as error:
        if not error.retriable:
            raise
        log.warning("offset commit deferred: %s", type(error).__name__)
        return False
    return True
