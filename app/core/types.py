"""Field types shared by the schemas of several modules."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

UtcDateTime = Annotated[dt.datetime, msgspec.Meta(tz=True)]
"""A timezone-aware datetime (always UTC here).

msgspec documents a datetime as `format: date-time` only when it is known to carry a timezone, so
outgoing fields use this type for the AsyncAPI and OpenAPI documents and the clients generated
from them to see a timestamp rather than a plain string.
"""
