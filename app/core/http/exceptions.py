"""Every HTTP failure answered in the envelope with a SPEC error code; no trace or SQL leaks."""

from __future__ import annotations

import logging
from typing import Any

from advanced_alchemy.exceptions import DuplicateKeyError, IntegrityError, NotFoundError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from app.core.errors import HTTP_STATUS, AppError, ErrorCode
from app.core.http.envelope import failure

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
    status: int, code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> Response[Any]:
    return Response(content=failure(code.value, message, details), status_code=status)


def app_error_handler(_request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    return _respond(exc.status_code, exc.code, exc.message, exc.details)


def validation_handler(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    fields = [str(p.get("key")) for p in problems if isinstance(p, dict) and p.get("key")]
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    message = f"{first.get('key')}: {first.get('message')}" if fields else str(exc.detail)
    status = 422 if problems else 400
    return _respond(
        status,
        ErrorCode.VALIDATION_ERROR,
        message,
        {"field": fields[0] if fields else None, "errors": problems},
    )


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
