"""The request class of every route: a JSON body too deeply nested is the client's error, not a 500."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ValidationException

DEEP_BODY = "JSON nested too deeply"


class ParleyRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        """The decoded body; msgspec raises RecursionError on nesting past Python's recursion limit."""
        try:
            return await super().json()
        except RecursionError:
            raise ValidationException(
                f"body: {DEEP_BODY}", extra=[{"key": "body", "message": DEEP_BODY}]
            ) from None
