"""Docs pipeline, steps two and three: description → schema catalog → AsyncAPI 2.6.0 document.

Whole sections are compared with the expected document, in the manner of FastStream's AsyncAPI tests.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest

from app.core.errors import ErrorCode
from app.core.socket import Gateway, server_event, ws_event, ws_response
from app.core.socket.registry import EventRegistry
from app.modules.docs.asyncapi import generate
from app.modules.docs.description import COMMON_ERRORS, describe
from app.modules.docs.schemas import REF_PREFIX, SchemaNameConflictError, build_catalog, referenced_names
from tests.support.docs_protocol import settings, synthetic_description

COMMON = [code.value for code in COMMON_ERRORS]


def spec_of(description: Any = None) -> dict[str, Any]:
    description = description or synthetic_description()
    return generate(description, build_catalog(description))


def test_document_head() -> None:
    spec = spec_of()
    assert spec["asyncapi"] == "2.6.0"
    assert spec["id"] == "urn:parley:socket"
    assert spec["info"]["title"] == "Test protocol"
    assert spec["info"]["version"] == "1.2.3"
    assert "auth: {token" in spec["info"]["description"]
    assert spec["info"]["contact"] == {
        "name": "Parley",
        "url": "http://docs.test:9000/ws-docs",
        "email": "parley@example.com",
    }
    assert spec["info"]["license"] == {"name": "Proprietary"}
    assert spec["defaultContentType"] == "application/json"
    assert spec["tags"] == [
        {"name": "alpha", "description": "Events of `alpha`."},
        {"name": "notes", "description": "Events of `notes`."},
    ]


def test_contact_and_license_come_from_the_settings() -> None:
    info = spec_of(
        synthetic_description(
            DOCS_CONTACT_NAME="Chat team",
            DOCS_CONTACT_URL="https://chat.example.org/help",
            DOCS_CONTACT_EMAIL="chat@example.org",
            DOCS_LICENSE_NAME="Apache-2.0",
            DOCS_LICENSE_URL="https://www.apache.org/licenses/LICENSE-2.0",
        )
    )["info"]
    assert info["contact"] == {
        "name": "Chat team",
        "url": "https://chat.example.org/help",
        "email": "chat@example.org",
    }
    assert info["license"] == {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}


def test_the_error_reference_is_in_the_info_description_once() -> None:
    description = spec_of()["info"]["description"]
    for code in ErrorCode:
        assert description.count(f"| `{code.value}` |") == 1, code
    assert "`retry_after`: Seconds until the token bucket holds a token again." in description
    assert "| `duplicate_login` |" in description
    assert "connect_error" in description


def test_server_and_security_scheme() -> None:
    spec = spec_of()
    assert spec["servers"] == {
        "parley": {
            "url": "ws://docs.test:9000",
            "protocol": "ws",
            "description": "Socket.IO 5 over Engine.IO 4 at path `/socket.io/`, namespace `/`, "
            "websocket or long-polling transport.",
            "security": [{"jwt": []}],
            "x-socketio": {"path": "/socket.io/", "namespace": "/", "transports": ["websocket", "polling"]},
        }
    }
    assert spec["components"]["securitySchemes"] == {
        "jwt": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The access token, sent in the Socket.IO handshake as `auth: {token}` "
            "(or as an `Authorization: Bearer` header).",
        }
    }


@pytest.mark.parametrize(
    ("public_url", "url", "protocol"),
    [
        ("https://chat.example.org", "wss://chat.example.org", "wss"),
        ("https://example.org/chat/", "wss://example.org/chat", "wss"),
        ("http://10.0.0.5:8000", "ws://10.0.0.5:8000", "ws"),
    ],
)
def test_server_follows_the_public_url(public_url: str, url: str, protocol: str) -> None:
    config = settings(PUBLIC_URL=public_url)
    description = describe(
        EventRegistry([]),
        title="t",
        version="1",
        server_url=config.public_url,
        rate_limits=config.rate_limits,
        info=config.docs_info,
    )
    server = spec_of(description)["servers"]["parley"]
    assert (server["url"], server["protocol"]) == (url, protocol)


def test_client_event_is_a_publish_operation() -> None:
    channel = spec_of(synthetic_description(RATE_LIMIT_CHAT="10/1"))["channels"]["note:add"]
    assert channel == {
        "publish": {
            "operationId": "emitNoteAdd",
            "description": "Pin a note on a board. The board's members receive `note:added`.",
            "tags": [{"name": "notes"}],
            "message": {"$ref": "#/components/messages/client.note.add"},
            "x-rate-limit": {"bucket": "chat", "capacity": 10, "perSeconds": 1.0},
            "x-room-required": "board:",
            "x-auth-required": True,
        },
    }


def test_server_event_is_a_subscribe_operation_with_its_room() -> None:
    channel = spec_of()["channels"]["note:added"]
    assert channel == {
        "subscribe": {
            "operationId": "onNoteAdded",
            "description": "A note was pinned. Everyone on the board sees it.",
            "tags": [{"name": "notes"}],
            "message": {"$ref": "#/components/messages/server.note.added"},
            "x-room": "board:{boardId}",
        },
    }


def test_each_ack_is_the_message_of_a_channel_of_its_own() -> None:
    spec = spec_of()
    assert spec["channels"]["note:add/ack"] == {
        "description": "Not an event name: the ack of `note:add`, passed to the callback of the emit "
        "(a Socket.IO ACK packet carrying the emit's id).",
        "subscribe": {
            "operationId": "ackNoteAdd",
            "tags": [{"name": "notes"}],
            "message": {"$ref": "#/components/messages/client.note.add.ack"},
        },
        "x-socketio-ack-of": "note:add",
    }
    assert spec["components"]["messages"]["client.note.add.ack"] == {
        "messageId": "client.note.add.ack",
        "name": "note:add/ack",
        "title": "Ack of note:add",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/NoteAddAck"},
    }


def test_each_text_is_stated_once() -> None:
    spec = spec_of()
    texts = [
        value
        for channel in spec["channels"].values()
        for key, operation in channel.items()
        if key in {"publish", "subscribe"}
        for field, value in operation.items()
        if field in {"summary", "description"}
    ]
    texts += [
        value
        for message in spec["components"]["messages"].values()
        for field, value in message.items()
        if field in {"summary", "description"}
    ]
    assert texts
    assert len(texts) == len(set(texts))
    assert all(
        field not in message
        for message in spec["components"]["messages"].values()
        for field in ("summary", "description")
    )


def test_one_channel_per_event_name_with_both_directions() -> None:
    spec = spec_of()
    assert sorted(spec["channels"]) == [
        "alpha:ping",
        "alpha:ping/ack",
        "alpha:wake",
        "alpha:wake/ack",
        "note:add",
        "note:add/ack",
        "note:added",
        "note:read",
        "note:read/ack",
    ]
    read = spec["channels"]["note:read"]
    assert read["publish"]["message"] == {"$ref": "#/components/messages/client.note.read"}
    assert read["subscribe"]["message"] == {"$ref": "#/components/messages/server.note.read"}
    operation_ids = [
        operation["operationId"]
        for channel in spec["channels"].values()
        for key, operation in channel.items()
        if key in {"publish", "subscribe"}
    ]
    assert len(operation_ids) == len(set(operation_ids)) == 10


def test_client_message_has_payload_examples_and_ack() -> None:
    message = spec_of()["components"]["messages"]["client.note.add"]
    assert message == {
        "messageId": "client.note.add",
        "name": "note:add",
        "title": "note:add",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/NotePayload"},
        "examples": [{"name": "example1", "payload": {"board": "b1", "text": "hello"}}],
        "x-ack": {
            "payload": {"$ref": "#/components/schemas/NoteAddAck"},
            "message": {"$ref": "#/components/messages/client.note.add.ack"},
            "rollbackOnError": True,
        },
    }


def test_an_event_without_payload_has_a_message_without_payload() -> None:
    """AsyncAPI 2.6 lets a message leave `payload` out; an empty-object schema would tell code
    generators to send a `{}` the server refuses."""
    spec = spec_of()
    assert spec["components"]["messages"]["client.alpha.wake"] == {
        "messageId": "client.alpha.wake",
        "name": "alpha:wake",
        "title": "alpha:wake",
        "contentType": "application/json",
        "x-ack": {
            "payload": {"$ref": "#/components/schemas/AlphaWakeAck"},
            "message": {"$ref": "#/components/messages/client.alpha.wake.ack"},
            "rollbackOnError": False,
        },
    }
    assert spec["channels"]["alpha:wake"]["publish"]["operationId"] == "emitAlphaWake"


def test_server_message_has_no_ack() -> None:
    message = spec_of()["components"]["messages"]["server.note.added"]
    assert message["payload"] == {"$ref": "#/components/schemas/NoteAdded"}
    assert message["examples"] == [
        {"name": "example1", "payload": {"id": 7, "text": "hello", "position": [3, 4]}}
    ]
    assert "x-ack" not in message


def test_struct_schemas_come_from_msgspec() -> None:
    schemas = spec_of()["components"]["schemas"]
    assert schemas["NotePayload"] == {
        "title": "NotePayload",
        "description": "A note to pin on a board.",
        "type": "object",
        "properties": {
            "board": {"type": "string"},
            "text": {"description": "What the note says", "type": "string", "maxLength": 50, "minLength": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
        },
        "required": ["board", "text"],
        "additionalProperties": False,
    }


def test_tuples_are_written_as_draft_07() -> None:
    position = spec_of()["components"]["schemas"]["NoteAdded"]["properties"]["position"]
    assert position == {
        "type": "array",
        "minItems": 2,
        "maxItems": 2,
        "items": [{"type": "integer"}, {"type": "integer"}],
        "additionalItems": False,
    }


def test_ack_schema_is_data_or_the_error_envelope_with_the_event_codes() -> None:
    schemas = spec_of()["components"]["schemas"]
    assert schemas["NoteAddAck"]["oneOf"] == [
        {"$ref": "#/components/schemas/NoteAddAckOk"},
        {"$ref": "#/components/schemas/NoteAddAckError"},
    ]
    assert schemas["NoteAddAckOk"] == {
        "title": "NoteAddAckOk",
        "type": "object",
        "properties": {
            "ok": {"type": "boolean", "const": True},
            "data": {"$ref": "#/components/schemas/NoteAck"},
        },
        "required": ["ok", "data"],
    }
    error = schemas["NoteAddAckError"]
    assert error["required"] == ["ok", "error"]
    assert error["properties"]["ok"] == {"type": "boolean", "const": False}
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/NoteAddError"}
    body = schemas["NoteAddError"]
    assert body["required"] == ["code", "message"]
    assert body["properties"]["code"] == {"$ref": "#/components/schemas/NoteAddErrorCode"}
    assert body["properties"]["details"] == {"$ref": "#/components/schemas/ErrorDetails"}
    assert schemas["NoteAddErrorCode"]["enum"] == ["FORBIDDEN", "NOT_FOUND", *COMMON]
    assert schemas["NoteAddErrorCode"]["title"] == "NoteAddErrorCode"
    assert error["properties"]["action"]["const"] == "ROLLBACK"


def test_error_details_are_typed_from_the_core() -> None:
    details = spec_of()["components"]["schemas"]["ErrorDetails"]
    assert details["properties"]["retry_after"]["type"] == "number"
    assert details["properties"]["limit"]["anyOf"] == [{"type": "string"}, {"type": "integer"}]
    assert set(details["properties"]) == {"field", "errors", "unknown", "retry_after", "limit"}


class Mood(msgspec.Struct):
    feeling: typing.Literal["calm", "cross"]
    titled: typing.Annotated[typing.Literal["a", "b"], msgspec.Meta(title="Letter")]


def test_inline_enums_become_named_components() -> None:
    mood = server_event(
        "x:mood", Mood, description="d", category="c", room="r", examples=[{"feeling": "calm", "titled": "a"}]
    )

    class MoodGateway(Gateway):
        emits = (mood,)

    schemas = spec_of(_described(MoodGateway))["components"]["schemas"]
    assert schemas["Mood"]["properties"]["feeling"] == {"$ref": "#/components/schemas/MoodFeeling"}
    assert schemas["MoodFeeling"] == {"title": "MoodFeeling", "enum": ["calm", "cross"]}
    assert schemas["Mood"]["properties"]["titled"] == {"$ref": "#/components/schemas/Letter"}
    assert schemas["Letter"]["enum"] == ["a", "b"]


class OtherLetters(msgspec.Struct):
    letter: typing.Annotated[typing.Literal["x", "y"], msgspec.Meta(title="Letter")]


def test_two_different_enums_with_one_name_are_refused() -> None:
    first = server_event(
        "x:mood", Mood, description="d", category="c", room="r", examples=[{"feeling": "calm", "titled": "a"}]
    )
    second = server_event(
        "x:other", OtherLetters, description="d", category="c", room="r", examples=[{"letter": "x"}]
    )

    class Both(Gateway):
        emits = (first, second)

    with pytest.raises(SchemaNameConflictError, match="Letter"):
        build_catalog(_described(Both))


def test_only_optimistic_events_document_rollback() -> None:
    schemas = spec_of()["components"]["schemas"]
    assert "action" not in schemas["AlphaPingAckError"]["properties"]
    assert schemas["AlphaPingErrorCode"]["enum"] == COMMON


def _described(gateway: type[Gateway]) -> Any:
    config = settings()
    return describe(
        EventRegistry([gateway(None)]),  # type: ignore[arg-type]
        title="t",
        version="1",
        server_url=config.public_url,
        rate_limits=config.rate_limits,
        info=config.docs_info,
    )


def test_every_reference_resolves() -> None:
    spec = spec_of()
    schemas = spec["components"]["schemas"]
    names = list(referenced_names(spec))
    assert names
    assert all(name in schemas for name in names)
    assert "AnonymousSchema" not in str(spec)
    messages = [
        operation["message"]["$ref"].removeprefix("#/components/messages/")
        for channel in spec["channels"].values()
        for key, operation in channel.items()
        if key in {"publish", "subscribe"}
    ]
    assert sorted(messages) == sorted(spec["components"]["messages"])


def test_document_is_plain_json() -> None:
    spec = spec_of()
    assert msgspec.json.decode(msgspec.json.encode(spec)) == spec


class Clash(msgspec.Struct):
    value: int


def _clashing(name: str) -> type[msgspec.Struct]:
    return msgspec.defstruct("Clash", [("other", str)], module=name)


def test_structs_sharing_a_name_get_distinct_identifiers() -> None:
    other = _clashing("elsewhere.schemas")
    first = server_event("x:first", Clash, description="d", category="c", room="r", examples=[{"value": 1}])
    second = server_event(
        "x:second", other, description="d", category="c", room="r", examples=[{"other": "o"}]
    )

    class ClashGateway(Gateway):
        emits = (first, second)

    description = _described(ClashGateway)
    spec = spec_of(description)
    payloads = {
        spec["components"]["messages"][key]["payload"]["$ref"].removeprefix(REF_PREFIX)
        for key in ("server.x.first", "server.x.second")
    }
    assert len(payloads) == 2
    assert all(name.isidentifier() and name in spec["components"]["schemas"] for name in payloads)


class PingAck(msgspec.Struct):
    pong: int


class PingPongAck(msgspec.Struct):
    """A payload named like the ack of the event it belongs to (`ping:pong` → `PingPongAck`)."""

    x: int


def test_an_ack_name_taken_by_a_struct_is_refused() -> None:
    class TakenGateway(Gateway):
        @ws_event("ping:pong", "Ping.", category="c", examples=[{"x": 1}])
        @ws_response("ping:pong", PingAck)
        async def ping(self, payload: PingPongAck) -> PingAck:
            return PingAck(1)

    description = _described(TakenGateway)
    with pytest.raises(SchemaNameConflictError, match="PingPongAck"):
        build_catalog(description)
