"""The error reference and the `force_logout` reasons as rows, and as Markdown for the AsyncAPI document.

The facts come from `app.core.errors` and `app.core.socket.protocol`; this only arranges them, so
the page and the spec state each of them once, in the same words.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import msgspec

from app.core.errors import CONNECT_ERROR_CODES, ERROR_REFERENCE, HTTP_STATUS, ErrorDetails
from app.core.socket.protocol import FORCE_LOGOUT_REASONS


@dataclass(frozen=True, slots=True)
class DetailRow:
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class ErrorRow:
    code: str
    status: int
    meaning: str
    when: str
    action: str
    details: tuple[DetailRow, ...]
    on_connect: bool

    @property
    def anchor(self) -> str:
        return f"error-{self.code}"


@dataclass(frozen=True, slots=True)
class ReasonRow:
    reason: str
    meaning: str
    action: str


def _detail_descriptions() -> dict[str, str]:
    hints = typing.get_type_hints(ErrorDetails, include_extras=True)
    found: dict[str, str] = {}
    for name, hint in hints.items():
        metas = [meta for meta in typing.get_args(hint)[1:] if isinstance(meta, msgspec.Meta)]
        found[name] = (metas[0].description or "") if metas else ""
    return found


def error_rows() -> list[ErrorRow]:
    details = _detail_descriptions()
    return [
        ErrorRow(
            code=code.value,
            status=HTTP_STATUS[code],
            meaning=doc.meaning,
            when=doc.when,
            action=doc.action,
            details=tuple(DetailRow(name, details[name]) for name in doc.details),
            on_connect=code in CONNECT_ERROR_CODES,
        )
        for code, doc in ERROR_REFERENCE.items()
    ]


def reason_rows() -> list[ReasonRow]:
    return [ReasonRow(reason, doc.meaning, doc.action) for reason, doc in FORCE_LOGOUT_REASONS.items()]


ERRORS_INTRO = (
    "Acks (`error.code`), `exception` events, `connect_error` and REST answers (`error.code`, with the "
    "HTTP status) share these codes; `details` carries the fields named."
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def errors_markdown() -> str:
    """The reference as Markdown tables: every code, then the `force_logout` reasons."""
    lines = [
        "## Error codes",
        "",
        ERRORS_INTRO,
        "",
        "| code | HTTP | meaning | when | what to do | details |",
        "|---|---|---|---|---|---|",
    ]
    for row in error_rows():
        named = "; ".join(f"`{detail.name}`: {detail.description}" for detail in row.details)
        lines.append(
            f"| `{row.code}` | {row.status} | {_cell(row.meaning)} | {_cell(row.when)} | "
            f"{_cell(row.action)} | {_cell(named)} |"
        )
    connect = ", ".join(f"`{code.value}`" for code in CONNECT_ERROR_CODES)
    lines += [
        "",
        f"A refused connection gets `connect_error` with data `{{code, message}}`, code one of {connect}.",
        "",
        "## `force_logout` reasons",
        "",
        "| reason | meaning | what to do |",
        "|---|---|---|",
        *(f"| `{row.reason}` | {_cell(row.meaning)} | {_cell(row.action)} |" for row in reason_rows()),
    ]
    return "\n".join(lines)
