"""The chat's pure rules: mentions, literal search patterns, message bodies, direct keys, cursors."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.core.errors import AppError
from app.modules.chat.models import BODY_MAX, direct_key
from app.modules.chat.rows import (
    MENTIONS_PER_MESSAGE_MAX,
    check_body,
    decode_cursor,
    encode_cursor,
    like_pattern,
    mentioned_names,
)


def test_mentions_are_lowercased_unique_and_bounded() -> None:
    assert mentioned_names("hi @Alice, @bob. and @alice again") == ["alice", "bob"]
    assert mentioned_names("mail me at me@example.com or @@x or @ab") == []
    assert mentioned_names("@first.last- @under_score") == ["first.last", "under_score"]
    many = " ".join(f"@user{index:03d}" for index in range(50))
    assert len(mentioned_names(many)) == MENTIONS_PER_MESSAGE_MAX


def test_like_pattern_takes_wildcards_literally() -> None:
    assert like_pattern("100%") == "%100\\%%"
    assert like_pattern("a_b") == "%a\\_b%"
    assert like_pattern("back\\slash") == "%back\\\\slash%"
    assert like_pattern("it's 안녕") == "%it's 안녕%"


@pytest.mark.parametrize("body", ["", " ", "\n\t ", "nul\x00", "x" * (BODY_MAX + 1)])
def test_bad_bodies_are_validation_errors_naming_body(body: str) -> None:
    with pytest.raises(AppError) as raised:
        check_body(body)
    assert raised.value.code == "VALIDATION_ERROR"
    assert raised.value.details == {"field": "body"}


def test_good_bodies_pass() -> None:
    check_body("  hello  ")
    check_body("안녕하세요")
    check_body("x" * BODY_MAX)


def test_direct_key_is_the_same_from_both_sides() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert direct_key(first, second) == direct_key(second, first)
    assert direct_key(first, second) != direct_key(first, uuid.uuid4())


def test_cursor_round_trip_and_garbage() -> None:
    stamp = dt.datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=dt.UTC)
    key = uuid.uuid4()
    assert decode_cursor(encode_cursor(stamp, key)) == (stamp, key)
    for garbage in ("", "nonsense", "bm8tcGlwZQ", encode_cursor(stamp, key)[:-4]):
        with pytest.raises(AppError) as raised:
            decode_cursor(garbage)
        assert raised.value.details == {"field": "cursor"}
