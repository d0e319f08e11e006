"""The JSON envelope of every `/api` answer: `{success, data, message, error, timestamp}`."""

from __future__ import annotations

import datetime as dt
from typing import Generic, TypeVar

import msgspec

from app.core.errors import ErrorDetails
from app.core.types import UtcDateTime

T = TypeVar("T")


class ErrorInfo(msgspec.Struct):
    code: str
    message: str
    details: ErrorDetails | None = None


class Envelope(msgspec.Struct, Generic[T]):
    success: bool
    data: T | None
    message: str
    error: ErrorInfo | None
    timestamp: UtcDateTime


def ok(data: T, message: str = "OK") -> Envelope[T]:
    return Envelope(success=True, data=data, message=message, error=None, timestamp=dt.datetime.now(dt.UTC))


def failure(code: str, message: str, details: ErrorDetails | None = None) -> Envelope[None]:
    return Envelope(
        success=False,
        data=None,
        message=message,
        error=ErrorInfo(code, message, details),
        timestamp=dt.datetime.now(dt.UTC),
    )
