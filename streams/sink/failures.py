"""Whether a failed insert is worth retrying: the rows were refused for good, or ClickHouse was away.

A permanent failure is about the data: trying the same rows again fails the same way, so the sink
finds the refused rows and sets them aside. Everything else is retried, including errors this module
does not know: an error that is not about the data (a dropped table, a revoked grant, a new server
code) would otherwise dead-letter every row that arrives until an operator fixes it.
"""

from __future__ import annotations

import enum
import struct

from clickhouse_driver import errors
from clickhouse_driver.columns import exceptions as column_exceptions

_CODES = errors.ErrorCodes


class Failure(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"


# Raised by clickhouse-driver while it encodes a row for its column, before anything is sent.
# AttributeError too: the String column calls ``.encode()`` on whatever value it is given.
_ENCODING_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,
    ValueError,  # UnicodeEncodeError included: a lone surrogate has no UTF-8 form
    AttributeError,
    OverflowError,
    struct.error,
    column_exceptions.ColumnException,
)

# Server (or driver) error codes that say a value does not fit its column.
PERMANENT_CODES: frozenset[int] = frozenset(
    getattr(_CODES, name)
    for name in (
        "CANNOT_PARSE_TEXT",
        "CANNOT_PARSE_ESCAPE_SEQUENCE",
        "CANNOT_PARSE_QUOTED_STRING",
        "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
        "CANNOT_PARSE_DATE",
        "CANNOT_PARSE_DATETIME",
        "CANNOT_PARSE_NUMBER",
        "CANNOT_PARSE_UUID",
        "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
        "CANNOT_READ_ARRAY_FROM_TEXT",
        "CANNOT_CONVERT_TYPE",
        "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
        "TYPE_MISMATCH",
        "TOO_LARGE_STRING_SIZE",
        "TOO_LARGE_ARRAY_SIZE",
        "INCORRECT_DATA",
        "ARGUMENT_OUT_OF_BOUND",
        "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    )
)

# Named for the reader: ClickHouse away, overloaded or out of room. Unknown codes are retried as well.
TRANSIENT_CODES: frozenset[int] = frozenset(
    getattr(_CODES, name)
    for name in (
        "TIMEOUT_EXCEEDED",
        "SOCKET_TIMEOUT",
        "NETWORK_ERROR",
        "ALL_CONNECTION_TRIES_FAILED",
        "TOO_MANY_SIMULTANEOUS_QUERIES",
        "NO_FREE_CONNECTION",
        "TOO_MANY_PARTS",
        "MEMORY_LIMIT_EXCEEDED",
        "CANNOT_ALLOCATE_MEMORY",
        "READONLY",
        "TABLE_IS_READ_ONLY",
        "NOT_ENOUGH_SPACE",
        "ABORTED",
        "QUOTA_EXPIRED",
        "NO_ZOOKEEPER",
        "KEEPER_EXCEPTION",
        "UNKNOWN_STATUS_OF_INSERT",
    )
)


def too_many_partitions(error: BaseException) -> bool:
    """Current ClickHouse refuses an insert block spanning more than 100 partitions (months, here).

    Not the data's fault, and not worth waiting for: the same rows in smaller inserts are taken.
    It shares its code with "too many parts" (merges behind inserts), which waiting does cure.
    """
    return (
        isinstance(error, errors.ServerException)
        and error.code == _CODES.TOO_MANY_PARTS
        and "partitions for single INSERT block" in (error.message or "")
    )


def classify(error: BaseException) -> Failure:
    if isinstance(error, errors.Error):
        # Checked before the encoding errors: the driver's own errors carry a code (its
        # TypeMismatchError wraps struct.error and OverflowError raised while encoding).
        return Failure.PERMANENT if error.code in PERMANENT_CODES else Failure.TRANSIENT
    if isinstance(error, _ENCODING_ERRORS):
        return Failure.PERMANENT
    return Failure.TRANSIENT
