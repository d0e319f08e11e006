"""A small synthetic protocol (a notes board, a ping, a payload-less wake) that the docs pipeline's
tests describe.

Fixed, so each step's tests (description, schemas, AsyncAPI, TypeScript, page) can spell out what
they expect of it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from app.config.settings import Settings
from app.core.errors import ErrorCode
from app.core.socket import Gateway, RateBucket, SocketContext, server_event, ws_event, ws_response
from app.core.socket.registry import EventRegistry
from app.modules.docs.description import ProtocolDescription, describe


class NotePayload(msgspec.Struct, forbid_unknown_fields=True):
    """A note to pin on a board."""

    board: str
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=50, description="What the note says")]
    tags: list[str] = []


class NoteAck(msgspec.Struct):
    id: int
    pinned_at: dt.datetime


class NoteAdded(msgspec.Struct):
    id: int
    text: str
    position: tuple[int, int]


class ReadPayload(msgspec.Struct):
    board: str
    up_to: int


class ReadState(msgspec.Struct):
    board: str
    user_id: str
    up_to: int


NOTES_BUCKET = RateBucket("chat", lambda limits: limits.chat)

NOTE_ADDED = server_event(
    "note:added",
    NoteAdded,
    description="A note was pinned. Everyone on the board sees it.",
    category="notes",
    room="board:{boardId}",
    examples=[{"id": 7, "text": "hello", "position": [3, 4]}],
)
NOTE_READ = server_event(
    "note:read",
    ReadState,
    description="Someone read the board up to a note.",
    category="notes",
    room="board:{boardId} (not the reader)",
    examples=[{"board": "b1", "user_id": "u1", "up_to": 7}],
)


class NotesGateway(Gateway):
    emits = (NOTE_ADDED, NOTE_READ)

    @ws_event(
        "note:add",
        "Pin a note on a board. The board's members receive `note:added`.",
        category="notes",
        examples=[{"board": "b1", "text": "hello"}],
        errors=[ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND],
        rate_limit=NOTES_BUCKET,
        optimistic=True,
        room_required="board:",
    )
    @ws_response("note:add", NoteAck)
    async def add(self, client: SocketContext, payload: NotePayload) -> NoteAck:
        return NoteAck(id=1, pinned_at=dt.datetime.now(dt.UTC))

    @ws_event(
        "note:read",
        "Mark the board read up to a note.",
        category="notes",
        examples=[{"board": "b1", "up_to": 7}],
    )
    @ws_response("note:read", ReadPayload)
    async def read(self, client: SocketContext, payload: ReadPayload) -> ReadPayload:
        return payload


class PingPayload(msgspec.Struct):
    nonce: int


class AlphaGateway(Gateway):
    @ws_event("alpha:ping", "Answer with the same nonce.", category="alpha", examples=[{"nonce": 1}])
    @ws_response("alpha:ping", PingPayload)
    async def ping(self, payload: PingPayload) -> PingPayload:
        return payload

    @ws_event("alpha:wake", "Answer with nonce 0; takes no payload.", category="alpha")
    @ws_response("alpha:wake", PingPayload)
    async def wake(self) -> PingPayload:
        return PingPayload(0)


def synthetic_registry() -> EventRegistry:
    return EventRegistry([NotesGateway(None), AlphaGateway(None)])  # type: ignore[arg-type]


def settings(**env: str) -> Settings:
    return Settings.from_env({"PUBLIC_URL": "http://docs.test:9000", **env}, env_file=None)


def synthetic_description(**env: str) -> ProtocolDescription:
    config = settings(**env)
    return describe(
        synthetic_registry(),
        title="Test protocol",
        version="1.2.3",
        server_url=config.public_url,
        rate_limits=config.rate_limits,
        info=config.docs_info,
    )
