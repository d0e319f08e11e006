"""A sample application module, as an app built on Parley would add one: `game:` rooms and events.

It proves that an application can add its own room prefix with its own hook, and it gives the tests
handles on the hub's cross-node operations (`sockets_join`, `sockets_leave`, `disconnect_sockets`)
and on the dispatcher's limits (`game:hold` blocks until `game:release`, `game:boom` fails inside
the database). Served by `create_asgi()`: `uvicorn --factory tests.support.game:create_asgi`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import msgspec
import socketio
from sqlalchemy import text

from app.config.settings import get_settings
from app.core.db import UnitOfWork
from app.core.errors import ErrorCode
from app.core.module import Module
from app.core.socket import Gateway, SocketContext, server_event, ws_event, ws_payload, ws_response
from app.core.socket.hub import SocketHub
from app.core.socket.protocol import RoomName
from app.core.socket.rooms import RoomManager
from app.main import MODULES, create_app

OPEN_SUFFIX = "-open"


class GameHook:
    """`game:{table}`: tables whose name ends in `-open` admit anyone; any other only its owner,
    the user whose id is the table's name."""

    async def can_join(self, user_id: str, room: str) -> bool:
        table = room.removeprefix("game:")
        return table.endswith(OPEN_SUFFIX) or table == user_id


class Move(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName
    target: RoomName


class Shout(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName
    text: str


class End(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName
    reason: str


class Table(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName


class Hold(msgspec.Struct, forbid_unknown_fields=True):
    key: str


class News(msgspec.Struct):
    text: str
    by: str


class Over(msgspec.Struct):
    reason: str


class Done(msgspec.Struct):
    done: bool = True


class Peak(msgspec.Struct):
    running: int
    peak: int


class Nothing(msgspec.Struct, forbid_unknown_fields=True):
    pass


GAME_NEWS = server_event(
    "game:news",
    News,
    description="Something was shouted in a game room.",
    category="game",
    room="game:{table}",
    examples=[{"text": "hi", "by": "00000000-0000-4000-8000-000000000001"}],
)
GAME_OVER = server_event(
    "game:over",
    Over,
    description="The game ended; the socket is disconnected right after.",
    category="game",
    room="game:{table}",
    examples=[{"reason": "checkmate"}],
)


class HoldState:
    """Handlers parked by `game:hold`, per key, and how many ran at once (this process only)."""

    def __init__(self) -> None:
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.running: defaultdict[str, int] = defaultdict(int)
        self.peak: defaultdict[str, int] = defaultdict(int)


class GameGateway(Gateway):
    emits = (GAME_NEWS, GAME_OVER)

    @ws_event(
        "game:gather",
        "Every socket in `room` joins `target`.",
        category="game",
        examples=[{"room": "game:a-open", "target": "game:b-open"}],
    )
    @ws_payload(Move)
    @ws_response("game:gather", Done)
    async def gather(self, payload: Move, hub: SocketHub) -> Done:
        await hub.sockets_join(payload.room, payload.target)
        return Done()

    @ws_event(
        "game:scatter",
        "Every socket in `room` leaves `target`.",
        category="game",
        examples=[{"room": "game:a-open", "target": "game:b-open"}],
    )
    @ws_payload(Move)
    @ws_response("game:scatter", Done)
    async def scatter(self, payload: Move, hub: SocketHub) -> Done:
        await hub.sockets_leave(payload.room, payload.target)
        return Done()

    @ws_event(
        "game:end",
        "Disconnect every socket in `room`, telling each `game:over` first.",
        category="game",
        examples=[{"room": "game:a-open", "reason": "checkmate"}],
    )
    @ws_payload(End)
    @ws_response("game:end", Done)
    async def end(self, payload: End, hub: SocketHub) -> Done:
        await hub.disconnect_sockets(payload.room, event=GAME_OVER.name, data=Over(payload.reason))
        return Done()

    @ws_event(
        "game:shout",
        "Emit `game:news` to `room`, on every node.",
        category="game",
        examples=[{"room": "game:a-open", "text": "hi"}],
    )
    @ws_payload(Shout)
    @ws_response("game:shout", Done)
    async def shout(self, ctx: SocketContext, payload: Shout) -> Done:
        await ctx.emit(GAME_NEWS, News(payload.text, ctx.user_id), room=payload.room)
        return Done()

    @ws_event(
        "game:move",
        "Move to a table; clients show the move before the ack (optimistic), so a refusal rolls back.",
        category="game",
        examples=[{"room": "game:a-open"}],
        errors=[ErrorCode.FORBIDDEN, ErrorCode.VALIDATION_ERROR],
        optimistic=True,
    )
    @ws_payload(Table)
    @ws_response("game:move", Table)
    async def move(self, ctx: SocketContext, payload: Table, rooms: RoomManager) -> Table:
        await rooms.authorize(ctx.user_id, payload.room)
        return payload

    @ws_event(
        "game:hold", "Run until `game:release` with the same key.", category="game", examples=[{"key": "k"}]
    )
    @ws_payload(Hold)
    @ws_response("game:hold", Done)
    async def hold(self, payload: Hold, holds: HoldState) -> Done:
        holds.running[payload.key] += 1
        holds.peak[payload.key] = max(holds.peak[payload.key], holds.running[payload.key])
        try:
            await holds.gates[payload.key].wait()
        finally:
            holds.running[payload.key] -= 1
        return Done()

    @ws_event(
        "game:release",
        "Let every `game:hold` of the key finish; answer how many ran at once.",
        category="game",
        examples=[{"key": "k"}],
    )
    @ws_payload(Hold)
    @ws_response("game:release", Peak)
    async def release(self, payload: Hold, holds: HoldState) -> Peak:
        holds.gates[payload.key].set()
        return Peak(holds.running[payload.key], holds.peak[payload.key])

    @ws_event(
        "game:peek",
        "How many `game:hold` of the key run now, and at most so far.",
        category="game",
        examples=[{"key": "k"}],
    )
    @ws_payload(Hold)
    @ws_response("game:peek", Peak)
    async def peek(self, payload: Hold, holds: HoldState) -> Peak:
        return Peak(holds.running[payload.key], holds.peak[payload.key])

    @ws_event(
        "game:boom",
        "Fail inside the database with an error that names SQL.",
        category="game",
        examples=[{}],
        errors=[ErrorCode.INTERNAL],
    )
    @ws_payload(Nothing)
    @ws_response("game:boom", Done)
    async def boom(self, uow: UnitOfWork) -> Done:
        await uow.session.execute(text("SELECT secret_column FROM no_such_table_for_parley"))
        return Done()


game_module = Module(
    name="game",
    gateways=[GameGateway],
    providers={HoldState: lambda _ctx: HoldState()},
    room_hooks={"game:": lambda _ctx: GameHook()},
)


def create_asgi() -> socketio.ASGIApp:
    return create_app(get_settings(), (*MODULES, game_module)).asgi
