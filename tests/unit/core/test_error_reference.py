"""The error reference covers every code, and names only `details` fields that exist."""

from __future__ import annotations

import typing

from app.core.errors import CONNECT_ERROR_CODES, ERROR_REFERENCE, ErrorCode, ErrorDetails
from app.core.socket.protocol import FORCE_LOGOUT_REASONS, ForceLogoutReason


def test_every_code_is_documented() -> None:
    assert set(ERROR_REFERENCE) == set(ErrorCode)
    for code, doc in ERROR_REFERENCE.items():
        assert all((doc.meaning, doc.when, doc.action)), code


def test_details_fields_named_by_the_reference_exist() -> None:
    known = set(typing.get_type_hints(ErrorDetails))
    for code, doc in ERROR_REFERENCE.items():
        assert set(doc.details) <= known, code
    assert {"retry_after", "limit"} <= set(ERROR_REFERENCE[ErrorCode.RATE_LIMITED].details)


def test_connect_error_codes_are_those_a_handshake_can_refuse_with() -> None:
    assert ErrorCode.UNAUTHORIZED in CONNECT_ERROR_CODES
    assert ErrorCode.FORBIDDEN not in CONNECT_ERROR_CODES


def test_every_force_logout_reason_is_documented() -> None:
    (literal, _meta) = typing.get_args(ForceLogoutReason)
    assert set(FORCE_LOGOUT_REASONS) == set(typing.get_args(literal))
