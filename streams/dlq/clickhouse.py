"""The rows the sink set aside in ClickHouse (``sink_dead_letters``), read back as dead letters.

The sink keeps them in ClickHouse, not in ``alignment.dlq``: it is the stage that writes there, and a
row ClickHouse refused is still a Kafka record of an output topic, which ``dlq redrive`` can send back
to that topic for the sink to take again once the cause is fixed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from streams.dlq.letters import SINK, DeadLetter

TABLE = "sink_dead_letters"

# A row set aside twice (a batch replayed after a crash, or a redriven row refused again) is one
# dead letter: the table's key, with what its latest setting aside said. argMax rather than FINAL
# so that the latest wins whatever order the parts merge in.
QUERY = f"""
SELECT
    source_topic,
    source_partition,
    source_offset,
    target_table,
    argMax(reason, refused_at_ms),
    argMax(error, refused_at_ms),
    argMax(value_hex, refused_at_ms),
    max(refused_at_ms) AS last_refused_at_ms
FROM {TABLE}
GROUP BY source_topic, source_partition, source_offset, target_table
HAVING last_refused_at_ms >= %(since_ms)s AND last_refused_at_ms < %(until_ms)s
"""

_NO_END = 2**64 - 1


class SinkUnavailable(Exception):
    """ClickHouse could not be reached or queried; the message is one line and carries no secret."""


class QueryClient(Protocol):
    def execute(self, query: str, params: Any = None) -> Any: ...


def _value(value_hex: str) -> bytes | None:
    if not value_hex:
        return None
    try:
        return bytes.fromhex(value_hex)
    except ValueError:  # written by hand or by another version: shown as it is rather than lost
        return value_hex.encode()


def letter(row: Sequence[Any]) -> DeadLetter:
    topic, partition, offset, target, reason, error, value_hex, refused_at_ms = row
    value = _value(value_hex)
    # The time it was set aside is part of the digest: a redriven row that the sink refuses again is
    # a new dead letter, not one the redrive marker already covers.
    digest = hashlib.sha256(f"{target}\0{refused_at_ms}\0".encode() + (value or b"")).hexdigest()[:32]
    return DeadLetter(
        dlq_partition=-1,
        dlq_offset=-1,
        reason=reason,
        detail=error,
        topic=topic,
        partition=partition,
        offset=offset,
        key=None,  # the sink keeps the value only; the partition is enough to send it back
        value=value,
        dead_lettered_at=refused_at_ms,
        fingerprint=digest,
        kept_at=f"{TABLE}:{target}:{topic}:{partition}:{offset}",
        stage=SINK,
    )


def read_sink_letters(
    client: QueryClient, since_ms: int | None = None, until_ms: int | None = None
) -> list[DeadLetter]:
    """Every row of ``sink_dead_letters`` once, refused at or after ``since_ms`` and before ``until_ms``."""
    from clickhouse_driver import errors

    params = {"since_ms": since_ms or 0, "until_ms": _NO_END if until_ms is None else until_ms}
    try:
        rows = client.execute(QUERY, params)
    except errors.Error as error:
        code = getattr(error, "code", None)
        if code == errors.ErrorCodes.UNKNOWN_TABLE:
            return []  # the sink never started on this database: it set nothing aside
        raise SinkUnavailable(f"{type(error).__name__} (code {code})") from None
    except (OSError, EOFError) as error:
        raise SinkUnavailable(type(error).__name__) from None
    return [letter(row) for row in rows]
