"""Every HTTP failure answered in the envelope with a SPEC error code; no trace or SQL leaks."""

from __future__ import annotations

import logging
import re
from typing import Any

from advanced_alchemy.exceptions import DuplicateKeyError, IntegrityError, NotFoundError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from app.core.errors import HTTP_STATUS, AppError, ErrorCode, ErrorDetails
from app.core.faults import is_unavailable
from app.core.http.envelope import failure
from app.core.http.rate_limit import retry_after_header
from app.core.text import explain

logger = logging.getLogger(__name__)

STATUS_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_FOUND,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


def _respond(
    status: int, code: ErrorCode, message: str, details: ErrorDetails | None = None
) -> Response[Any]:
    headers = retry_after_header(details) if code is ErrorCode.RATE_LIMITED else {}
    return Response(content=failure(code.value, message, details), status_code=status, headers=headers)


def app_error_handler(_request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    return _respond(exc.status_code, exc.code, exc.message, exc.details)


_NAMED_FIELD = re.compile(r"field `([^`]+)`|^([A-Za-z_][\w.]*): ")


def _field_of(problem: dict[str, Any]) -> str | None:
    """The field a problem is about; a whole-body problem names it too, as msgspec does ("missing
    required field `x`") or as a schema's own check does ("metadata.note: must not …")."""
    key = problem.get("key")
    named = _NAMED_FIELD.search(str(problem.get("message", "")))
    if key in (None, "", "data") and named:
        return named.group(1) or named.group(2)
    return str(key) if key else None


def validation_handler(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    problems = [
        {**p, "message": explain(str(p.get("message", "")))}
        for p in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(p, dict)
    ]
    if not problems:
        return _respond(400, ErrorCode.VALIDATION_ERROR, str(exc.detail), {"field": None, "errors": []})
    field = _field_of(problems[0])
    message = f"{field}: {problems[0].get('message')}" if field else str(exc.detail)
    return _respond(422, ErrorCode.VALIDATION_ERROR, message, {"field": field, "errors": problems})


def http_error_handler(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = STATUS_CODES.get(
        exc.status_code, ErrorCode.INTERNAL if exc.status_code >= 500 else ErrorCode.VALIDATION_ERROR
    )
    return _respond(exc.status_code, code, str(exc.detail))


def not_found_handler(_request: Request[Any, Any, Any], _exc: NotFoundError) -> Response[Any]:
    return _respond(404, ErrorCode.NOT_FOUND, "Not found")


def conflict_handler(_request: Request[Any, Any, Any], _exc: IntegrityError) -> Response[Any]:
    return _respond(409, ErrorCode.CONFLICT, "Conflicts with existing data")


def internal_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """503 UNAVAILABLE while a backing service cannot serve (one log line); 500 INTERNAL for a bug."""
    if is_unavailable(exc):
        logger.warning(
            "%s %s: a backing service is unavailable (%s)",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return _respond(
            HTTP_STATUS[ErrorCode.UNAVAILABLE],
            ErrorCode.UNAVAILABLE,
            "Service temporarily unavailable; try again",
        )
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(HTTP_STATUS[ErrorCode.INTERNAL], ErrorCode.INTERNAL, "Internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    AppError: app_error_handler,
    ValidationException: validation_handler,
    NotFoundError: not_found_handler,
    DuplicateKeyError: conflict_handler,
    IntegrityError: conflict_handler,
    HTTPException: http_error_handler,
    Exception: internal_handler,
}
