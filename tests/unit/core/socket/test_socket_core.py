"""Pure pieces of the socket gateway: origins, sizes, field names, room names, handshake tokens."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from app.core.errors import AppError, ErrorCode
from app.core.socket.decorators import EventSpec
from app.core.socket.dispatcher import decode_payload, validation_failure
from app.core.socket.engine.server import encoded_size, origin_checker
from app.core.socket.protocol import ExceptionEvent, RoomIn
from app.core.socket.rooms import USER_ROOMS, AnyoneHook, OwnIdHook, RoomManager, RoomPrefix, room_prefix
from app.core.socket.runtime import bearer_token, refusal

HOST = {"HTTP_HOST": "chat.example:8000", "wsgi.url_scheme": "https"}


def test_without_an_allowlist_only_the_same_origin_passes() -> None:
    check = origin_checker(())
    assert check("https://chat.example:8000", HOST)
    assert check("https://chat.example:8000/", HOST)
    assert not check("http://chat.example:8000", HOST)
    assert not check("https://evil.example", {**HOST, "HTTP_X_FORWARDED_HOST": "evil.example"})
    assert not check(None, HOST), "no Origin: not a browser, no CORS headers"


def test_an_allowlist_is_exact() -> None:
    check = origin_checker(("https://app.example", "https://admin.example/"))
    assert check("https://app.example", HOST)
    assert check("https://admin.example", HOST)
    assert not check("https://app.example.evil", HOST)
    assert not check("https://chat.example:8000", HOST), "the allowlist replaces same-origin"
    assert origin_checker(("*",))("https://anything.example", HOST)


def test_encoded_size_counts_utf8_bytes() -> None:
    assert encoded_size("a" * 100, 1024) == 100
    assert encoded_size("한" * 300, 1024) == 900
    assert encoded_size("한" * 400, 1024) == 1200
    assert encoded_size("한" * 100, 1024) <= 1024, "cannot exceed the limit: not encoded"
    assert encoded_size("한" * 2000, 1024) == 2000, "already over by characters: no need to encode"


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"room": 5}, "room"), ({}, "room"), ({"room": "a:b", "x": 1}, "x"), ({"room": "no"}, "room")],
)
def test_validation_errors_name_the_field(payload: object, field: str) -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(payload, RoomIn)
    error = validation_failure(caught.value)
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details == {"field": field}


@pytest.mark.parametrize("args", [[{}], [None], [{"x": 1}], [{}, {}]])
def test_an_event_without_payload_refuses_any_argument(args: list[object]) -> None:
    with pytest.raises(AppError) as caught:
        decode_payload(EventSpec(name="a:wake"), args)
    assert caught.value.code is ErrorCode.VALIDATION_ERROR
    assert caught.value.details == {"field": "payload"}
    assert caught.value.message == "payload: a:wake takes no payload; emit it with none"


def test_an_event_without_payload_is_handed_nothing() -> None:
    assert decode_payload(EventSpec(name="a:wake"), []) is None


@pytest.mark.parametrize("args", [[], [{"room": "a:b"}, {"room": "a:c"}]])
def test_an_event_with_payload_needs_exactly_one(args: list[object]) -> None:
    with pytest.raises(AppError) as caught:
        decode_payload(EventSpec(name="room:join", payload=RoomIn), args)
    assert caught.value.details == {"field": "payload"}


def test_a_payload_is_decoded_into_its_struct() -> None:
    spec = EventSpec(name="room:join", payload=RoomIn)
    assert decode_payload(spec, [{"room": "a:b"}]) == RoomIn("a:b")


class Cursor(msgspec.Struct):
    after_seq: int


class Cursors(msgspec.Struct):
    conversations: list[Cursor]


def test_nested_fields_are_named_by_path() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"conversations": [{"after_seq": 1}, {"after_seq": "x"}]}, Cursors)
    assert validation_failure(caught.value).details == {"field": "conversations.1.after_seq"}


@pytest.mark.parametrize("room", ["user", "User:x", "user:", ":x", "user:a b", "user:" + "x" * 200])
def test_malformed_room_names_are_validation_errors(room: str) -> None:
    with pytest.raises(AppError) as caught:
        room_prefix(room)
    assert caught.value.code is ErrorCode.VALIDATION_ERROR


async def test_room_manager_admits_by_prefix_hook() -> None:
    rooms = RoomManager()
    rooms.register_auth_hook(USER_ROOMS.prefix, OwnIdHook(USER_ROOMS))
    rooms.register_auth_hook("broadcast:", AnyoneHook())
    me, other = uuid.uuid4(), uuid.uuid4()
    await rooms.authorize(me, f"user:{me}")
    await rooms.authorize(me, "broadcast:all")
    for room in (f"user:{other}", "game:1"):
        with pytest.raises(AppError) as caught:
            await rooms.authorize(me, room)
        assert caught.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(ValueError, match="already has a hook"):
        rooms.register_auth_hook("user:", AnyoneHook())
    with pytest.raises(ValueError, match="must look like"):
        rooms.register_auth_hook("Game", AnyoneHook())


def test_the_handshake_token_comes_from_auth_then_the_header() -> None:
    header = {"HTTP_AUTHORIZATION": "Bearer from-header"}
    assert bearer_token(header, {"token": "from-auth"}) == "from-auth"
    assert bearer_token(header, None) == "from-header"
    assert bearer_token({"HTTP_AUTHORIZATION": "bearer  spaced "}, {"token": ""}) == "spaced"
    for environ, auth in (({}, None), ({"HTTP_AUTHORIZATION": "Basic abc"}, {"token": 5}), ({}, "token")):
        with pytest.raises(AppError) as caught:
            bearer_token(environ, auth)
        assert caught.value.code is ErrorCode.UNAUTHORIZED


def test_a_refusal_carries_code_and_message_as_connect_error_data() -> None:
    error = refusal(ErrorCode.TOKEN_EXPIRED, "Token has expired")
    assert error.error_args["data"] == {"code": "TOKEN_EXPIRED", "message": "Token has expired"}
    assert error.error_args["message"] == "Token has expired"


def test_exception_events_echo_at_most_a_short_event_name() -> None:
    event = ExceptionEvent.of("x" * 5000, AppError(ErrorCode.NOT_FOUND, "Unknown event"))
    assert len(event.event) == 100
    assert (event.code, event.message) == ("NOT_FOUND", "Unknown event")


def test_a_room_family_builds_and_reads_back_its_rooms() -> None:
    assert USER_ROOMS.room("u1") == "user:u1"
    assert USER_ROOMS.holds("user:u1")
    assert not USER_ROOMS.holds("group:u1")
    assert USER_ROOMS.key_of("user:u1") == "u1"
    with pytest.raises(ValueError, match="must look like"):
        RoomPrefix("User")
