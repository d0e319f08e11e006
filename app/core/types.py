"""Field types shared by the schemas of several modules."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from app.core.errors import validation_error

UtcDateTime = Annotated[dt.datetime, msgspec.Meta(tz=True)]
"""A timezone-aware datetime (always UTC here).

msgspec documents a datetime as `format: date-time` only when it is known to carry a timezone, so
outgoing fields use this type for the AsyncAPI and OpenAPI documents and the clients generated
from them to see a timestamp rather than a plain string.
"""


def utc_moment(value: dt.datetime, field: str) -> dt.datetime:
    """`value` in UTC (a value without an offset is taken as UTC); VALIDATION_ERROR naming `field` when
    it lies outside what a datetime can hold once moved to UTC (`9999-12-31T23:00-05:00`)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise validation_error(field, "is out of the range of dates this server handles") from None
