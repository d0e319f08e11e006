"""The shared text rules against hostile variants, and their readable explanations."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from app.core import text
from app.core.errors import AppError

HOSTILE = {
    "NUL": "ab\x00c",
    "bell": "ab\x07c",
    "escape": "ab\x1b[31mc",
    "DEL": "ab\x7fc",
    "C1": "ab\x85c",
    "right-to-left override": "ab\u202ecba",
    "isolate": "ab\u2066c\u2069",
    "line separator": "ab\u2028c",
    "byte order mark": "\ufeffabc",
}
EVERY_PATTERN = [text.MULTI_LINE, text.SINGLE_LINE, text.TRIMMED, text.USERNAME, text.URL, text.TEXT]


def accepts(pattern: str, value: str, max_length: int = 50) -> bool:
    field = Annotated[str, text.text(pattern, min_length=0, max_length=max_length)]
    try:
        msgspec.convert(value, field)
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize("pattern", EVERY_PATTERN)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_no_rule_lets_a_control_or_bidi_character_through(pattern: str, name: str) -> None:
    assert not accepts(pattern, HOSTILE[name], max_length=50)


@pytest.mark.parametrize("pattern", [text.SINGLE_LINE, text.TRIMMED, text.USERNAME, text.URL])
def test_a_trailing_newline_is_not_one_line(pattern: str) -> None:
    assert not accepts(pattern, "http://a\n")
    assert not accepts(pattern, "alice\n")


def test_what_each_rule_lets_through() -> None:
    assert accepts(text.MULTI_LINE, "two\nlines\twith tab\n")
    assert not accepts(text.MULTI_LINE, " \n\t ")
    assert accepts(text.SINGLE_LINE, " padded ")
    assert not accepts(text.SINGLE_LINE, "a\tb")
    assert accepts(text.TRIMMED, "Launch plan")
    assert not accepts(text.TRIMMED, " Launch")
    assert not accepts(text.TRIMMED, "Launch ")
    assert accepts(text.TRIMMED, "\u05e9\u05dc\u05d5\u05dd\u200f!"), "directional marks stay allowed"
    assert accepts(text.TRIMMED, "\U0001f469\u200d\U0001f4bb"), "emoji joiners stay allowed"
    assert accepts(text.USERNAME, "a.b_c-9")
    assert not accepts(text.USERNAME, "\u0430lice"), "a Cyrillic a is no ASCII letter"
    assert accepts(text.URL, "https://x.io/a?b=c")
    assert not accepts(text.URL, "javascript:alert(1)")


@pytest.mark.parametrize("pattern", [text.MULTI_LINE, text.SINGLE_LINE, text.TRIMMED])
def test_lengths_at_and_past_the_limit(pattern: str) -> None:
    assert accepts(pattern, "x" * 10, max_length=10)
    assert not accepts(pattern, "x" * 11, max_length=10)


class Titled(msgspec.Struct):
    title: Annotated[str, text.text(text.TRIMMED, max_length=10)]


def test_a_mismatch_is_explained_not_shown_as_a_regex() -> None:
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.convert({"title": "x\x00"}, Titled)
    explained = text.explain(str(raised.value))
    assert explained == f"{text.EXPLANATIONS[text.TRIMMED]} - at `$.title`"


def test_documents_are_checked_key_and_value_at_any_depth() -> None:
    text.check_document({"a": [{"b": "fine\nline"}], "n": 1, "none": None}, "metadata")
    deep: object = "x\x00"
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(AppError) as raised:
        text.check_document({"list": deep}, "metadata")
    assert raised.value.details is not None
    field = raised.value.details["field"]
    assert field is not None
    assert field.startswith("metadata.list.0.0")
    with pytest.raises(AppError) as key_error:
        text.check_document({"k\u202e": 1}, "metadata")
    assert key_error.value.details == {"field": "metadata"}


def test_check_names_the_field() -> None:
    with pytest.raises(AppError) as raised:
        text.check("a\x00", text.MULTI_LINE, "body")
    assert raised.value.details == {"field": "body"}
    text.check("fine", text.MULTI_LINE, "body")


def test_only_the_shared_patterns_make_a_constraint() -> None:
    with pytest.raises(ValueError, match="use one of the patterns"):
        text.text(r"^.*$", max_length=3)
