"""Which failures mean a backing service (Redis, the database) is unavailable, as opposed to a bug.

An unavailable service is answered UNAVAILABLE (HTTP 503) and logged in one line; anything else is
a bug, answered INTERNAL (HTTP 500) and logged with its traceback.
"""

from __future__ import annotations

import redis.exceptions
import sqlalchemy.exc

REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError,  # also a server still loading its data set
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica answering during a failover
)
UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
"""PostgreSQL error classes of a server that cannot serve: connection exceptions, insufficient
resources (too many connections, out of memory or disk), and operator intervention (shutting down,
restarting, not accepting connections yet)."""


CONFLICT_SQLSTATES = ("40001", "40P01")
"""A transaction that lost a race with another (a serialization failure, a deadlock broken by
PostgreSQL): rolled back, it may well succeed when run again."""


def is_transaction_conflict(exc: BaseException) -> bool:
    """The database rolled the transaction back because of a concurrent one; not a bug."""
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and any(
        str(getattr(cause, "sqlstate", None) or "") in CONFLICT_SQLSTATES
        for cause in (exc.orig, exc.__cause__)
        if cause is not None
    )


def is_stale_transport(exc: BaseException) -> bool:
    """uvloop's refusal to write on a connection its peer already reset (a pooled connection gone
    stale while idle): `RuntimeError: unable to perform operation on <TCPTransport closed=True …>`."""
    return isinstance(exc, RuntimeError) and str(exc).startswith("unable to perform operation on <")


def is_unavailable(exc: BaseException) -> bool:
    """A backing service is unreachable, overloaded or restarting; not a bug."""
    if isinstance(exc, TimeoutError | OSError | ConnectionError) or is_stale_transport(exc):
        return True
    if isinstance(exc, REDIS_UNAVAILABLE):
        return True
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        # A lost connection or a server that cannot serve; OperationalError also means, for example,
        # a missing table on SQLite, which is a bug.
        return exc.connection_invalidated or any(
            isinstance(cause, OSError)
            or is_stale_transport(cause)
            or str(getattr(cause, "sqlstate", None) or "").startswith(UNAVAILABLE_SQLSTATES)
            for cause in (exc.orig, exc.__cause__)
            if cause is not None
        )
    return False
