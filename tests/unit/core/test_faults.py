"""An unavailable backing service is told apart from a bug, whichever layer the failure comes through."""

from __future__ import annotations

import pytest
import redis.exceptions
import sqlalchemy.exc

from app.core.faults import is_stale_transport, is_unavailable

STALE = RuntimeError(
    "unable to perform operation on <TCPTransport closed=True reading=False 0x55e02ec48790>; "
    "the handler is closed"
)


class PostgresError(Exception):
    """What SQLAlchemy's asyncpg adapter wraps: an error with the server's SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "failure",
    [
        redis.exceptions.ConnectionError("down"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        ConnectionRefusedError(),
        TimeoutError(),
        STALE,
        sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError()),
        sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("x"), connection_invalidated=True),
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, STALE),
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, PostgresError("53300")),  # too many connections
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, PostgresError("57P03")),  # cannot connect now
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, PostgresError("08006")),  # connection failure
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"),
    ],
)
def test_a_backing_service_that_cannot_serve_is_unavailable(failure: BaseException) -> None:
    assert is_unavailable(failure)


@pytest.mark.parametrize(
    "failure",
    [
        sqlalchemy.exc.OperationalError("SELECT x", {}, Exception("no such table: x")),
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, PostgresError("42P01")),  # undefined table
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, PostgresError("23505")),  # unique violation
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        RuntimeError("coroutine ignored GeneratorExit"),
        KeyError("bug"),
        ValueError("bug"),
    ],
)
def test_a_bug_is_not_unavailability(failure: BaseException) -> None:
    assert not is_unavailable(failure)


def test_only_uvloop_s_closed_transport_error_is_a_stale_transport() -> None:
    assert is_stale_transport(STALE)
    assert not is_stale_transport(RuntimeError("Event loop is closed"))
    assert not is_stale_transport(OSError("unable to perform operation on <x>"))
