"""Docs pipeline, step one: gateway metadata → the neutral description.

The synthetic protocol is in `tests/support/docs_protocol.py`.
"""

from __future__ import annotations

import pytest

from app.core.errors import ErrorCode
from app.modules.docs.description import COMMON_ERRORS, describe
from tests.support.docs_protocol import (
    NoteAck,
    NotePayload,
    settings,
    synthetic_description,
    synthetic_registry,
)


def test_events_are_ordered_by_category_then_direction_then_name() -> None:
    description = synthetic_description()
    assert [(e.category, e.direction, e.name) for e in description.events] == [
        ("alpha", "client_to_server", "alpha:ping"),
        ("alpha", "client_to_server", "alpha:wake"),
        ("notes", "client_to_server", "note:add"),
        ("notes", "client_to_server", "note:read"),
        ("notes", "server_to_client", "note:added"),
        ("notes", "server_to_client", "note:read"),
    ]
    assert description.title == "Test protocol"
    assert description.version == "1.2.3"
    assert description.server_url == "http://docs.test:9000"


def test_client_event_carries_its_handler_metadata() -> None:
    (add,) = synthetic_description().named("note:add")
    assert add.is_client_event
    assert add.payload is NotePayload
    assert add.response is NoteAck
    assert add.description == "Pin a note on a board. The board's members receive `note:added`."
    assert add.examples == ({"board": "b1", "text": "hello"},)
    assert add.optimistic is True
    assert add.room_required == "board:"
    assert add.auth_required is True
    assert add.room is None


def test_error_codes_are_the_declared_ones_then_those_of_every_event() -> None:
    (add,) = synthetic_description().named("note:add")
    assert add.declared_errors == (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND)
    assert add.error_codes == (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, *COMMON_ERRORS)
    (ping,) = synthetic_description().named("alpha:ping")
    assert ping.error_codes == COMMON_ERRORS


def test_rate_limit_is_the_bucket_with_its_configured_size() -> None:
    description = synthetic_description(RATE_LIMIT_CHAT="12/3", RATE_LIMIT_DEFAULT="40/2")
    (add,) = description.named("note:add")
    (ping,) = description.named("alpha:ping")
    assert add.rate_limit is not None
    assert (add.rate_limit.bucket, add.rate_limit.capacity, add.rate_limit.per_seconds) == ("chat", 12, 3.0)
    assert str(add.rate_limit) == "12 per 3s (chat)"
    assert ping.rate_limit is not None
    assert (ping.rate_limit.bucket, ping.rate_limit.capacity) == ("default", 40)


def test_no_rate_limit_is_documented_when_limits_are_off() -> None:
    description = synthetic_description(RATE_LIMIT_ENABLED="false")
    assert all(event.rate_limit is None for event in description.events)


def test_server_event_carries_its_room_and_no_ack() -> None:
    (added,) = synthetic_description().named("note:added")
    assert not added.is_client_event
    assert added.room == "board:{boardId}"
    assert added.response is None
    assert added.error_codes == ()
    assert added.rate_limit is None


def test_one_name_in_both_directions_gives_two_events_with_distinct_keys() -> None:
    description = synthetic_description()
    both = description.named("note:read")
    assert [event.direction for event in both] == ["client_to_server", "server_to_client"]
    assert [event.key for event in both] == ["client.note.read", "server.note.read"]
    assert description.named("note:missing") == []


def test_grouping_by_category_and_direction() -> None:
    description = synthetic_description()
    grouped = description.by_category()
    assert list(grouped) == ["alpha", "notes"]
    assert [event.name for event in grouped["notes"]] == ["note:add", "note:read", "note:added", "note:read"]
    assert [event.name for event in description.client_events()] == [
        "alpha:ping",
        "alpha:wake",
        "note:add",
        "note:read",
    ]
    assert [event.name for event in description.server_events()] == ["note:added", "note:read"]


@pytest.mark.parametrize("public_url", ["http://docs.test:9000/", "http://docs.test:9000"])
def test_server_url_has_no_trailing_slash(public_url: str) -> None:
    config = settings(PUBLIC_URL=public_url)
    description = describe(
        synthetic_registry(),
        title="t",
        version="1",
        server_url=public_url,
        rate_limits=config.rate_limits,
        info=config.docs_info,
    )
    assert description.server_url == "http://docs.test:9000"
