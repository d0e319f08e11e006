"""One set of rules for every text field a client sends, as msgspec constraints.

The rules are regular expressions, so the same constraint validates payloads at run time (REST
bodies, query parameters and socket events alike) and appears in the OpenAPI and AsyncAPI
documents. They are written for both Python's `re` (which msgspec runs with `search`) and
JavaScript's RegExp (what JSON Schema tools use): `(?![\\s\\S])` ends a pattern instead of `$`,
which in Python also matches before a final newline (`"alice\\n"` would pass `^[a-z]+$`).

Refused everywhere: NUL and the other C0 controls (tab, line feed and carriage return are allowed in
multi-line text only), DEL and the C1 controls, the line and paragraph separators, bidirectional
embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, the "Trojan Source" characters),
the byte order mark and the interlinear annotation characters. The directional marks (U+200E,
U+200F, U+061C) and zero-width joiners stay allowed: right-to-left scripts and emoji need them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from app.core.errors import validation_error

_NEVER = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufff9-\ufffb"
_LINE_BREAKS = r"\t\n\r"
_END = r"(?![\s\S])"

MULTI_LINE = rf"^(?=[\s\S]*\S)[^{_NEVER}]*{_END}"
"""Text of several lines (a message body): not only whitespace."""
_IN_LINE = rf"[^{_NEVER}{_LINE_BREAKS}]"
_IN_LINE_NOT_SPACE = rf"[^{_NEVER}{_LINE_BREAKS}\s]"
SINGLE_LINE = rf"^{_IN_LINE}*{_END}"
"""One line, spaces anywhere (a search query, a password)."""
TRIMMED = (
    rf"^(?:[^{_NEVER}{_LINE_BREAKS}\s](?:[^{_NEVER}{_LINE_BREAKS}]*[^{_NEVER}{_LINE_BREAKS}\s])?)?{_END}"
)
"""One line that neither starts nor ends with whitespace (a title, a display name)."""
USERNAME = rf"^[A-Za-z0-9_.-]+{_END}"
"""ASCII letters, digits, `_`, `.` and `-` only."""
TEXT = rf"^[^{_NEVER}]*{_END}"
"""Any text, line breaks and blanks included, without the characters refused everywhere."""
URL = rf"^https?://{_IN_LINE_NOT_SPACE}+{_END}"

EXPLANATIONS = {
    MULTI_LINE: "must not be blank nor contain control characters or bidirectional overrides",
    SINGLE_LINE: "must be one line without control characters or bidirectional overrides",
    TRIMMED: "must be one line without control characters or bidirectional overrides, "
    "and must not start or end with whitespace",
    USERNAME: "may hold only ASCII letters, digits, `_`, `.` and `-`",
    TEXT: "must not contain control characters or bidirectional overrides",
    URL: "must be an http(s) URL without spaces or control characters",
}
_MISMATCH = re.compile(r"Expected `str` matching regex '((?:[^'\\]|\\.)*)'")
_COMPILED = {pattern: re.compile(pattern) for pattern in EXPLANATIONS}


def text(
    pattern: str, *, max_length: int, min_length: int = 1, description: str | None = None
) -> msgspec.Meta:
    """The constraint of a text field: one of this module's patterns and its lengths (code points)."""
    if pattern not in EXPLANATIONS:
        raise ValueError("use one of the patterns of app.core.text")
    summary = f"{min_length}–{max_length} characters; {EXPLANATIONS[pattern]}"
    return msgspec.Meta(
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
        description=f"{description}; {summary}" if description else summary,
    )


def explain(message: str) -> str:
    """A validation message with a rule's regular expression replaced by what the rule means."""

    def readable(match: re.Match[str]) -> str:
        pattern = match.group(1).replace("\\\\", "\\")
        return EXPLANATIONS.get(pattern, match.group(0))

    return _MISMATCH.sub(readable, message)


def check(value: str, pattern: str, field: str) -> None:
    """VALIDATION_ERROR naming `field` unless `value` follows `pattern` (for text msgspec cannot see)."""
    if _COMPILED[pattern].search(value) is None:
        raise validation_error(field, EXPLANATIONS[pattern])


def _strings(document: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every key and string in a JSON document with its path, without recursion (depth is the client's)."""
    pending: list[tuple[Any, str]] = [(document, path)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, str):
            yield node, where
        elif isinstance(node, dict):
            for key, value in node.items():
                yield str(key), where
                pending.append((value, f"{where}.{key}"))
        elif isinstance(node, list):
            pending.extend((value, f"{where}.{index}") for index, value in enumerate(node))


def check_document(document: Any, field: str) -> None:
    """Every key and string of a free-form JSON document follows the `TEXT` rule.

    PostgreSQL refuses a NUL anywhere in a `jsonb` document; the other characters are refused for
    the same reasons as in any text field.
    """
    for value, where in _strings(document, field):
        if _COMPILED[TEXT].search(value) is None:
            raise validation_error(where, EXPLANATIONS[TEXT])
