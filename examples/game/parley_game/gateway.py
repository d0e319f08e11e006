"""The game's socket events: decorated handlers, documented at /ws-docs from these declarations."""

from __future__ import annotations

from app.core.db import UnitOfWork
from app.core.errors import AppError, ErrorCode
from app.core.socket import Gateway, SocketContext, server_event, ws_event, ws_response
from app.core.socket.hub import SocketHub
from app.core.socket.protocol import RoomAck
from app.core.socket.rooms import RoomManager
from parley_game.schemas import Done, EndIn, MoveIn, News, Over, Scored, ScoreIn, ShoutIn, TableIn
from parley_game.scores import add_score

GAME_NEWS = server_event(
    "game:news",
    News,
    description="Something was shouted at a game table.",
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
GAME_SCORED = server_event(
    "game:scored",
    Scored,
    description="A player at the table scored; `total` is that player's total at the table.",
    category="game",
    room="game:{table}",
    examples=[
        {"room": "game:a-open", "user_id": "00000000-0000-4000-8000-000000000001", "points": 3, "total": 7}
    ],
)


class GameGateway(Gateway):
    emits = (GAME_NEWS, GAME_OVER, GAME_SCORED)

    @ws_event(
        "game:score",
        "Score `points` at a table the socket has joined (`room:join`); everyone there gets `game:scored`.",
        category="game",
        room_required="game:{table}",
        examples=[{"room": "game:a-open", "points": 3}],
        errors=[ErrorCode.FORBIDDEN, ErrorCode.VALIDATION_ERROR],
    )
    @ws_response("game:score", Scored)
    async def score(self, client: SocketContext, payload: ScoreIn, uow: UnitOfWork) -> Scored:
        if payload.room not in client.rooms():
            raise AppError(
                ErrorCode.FORBIDDEN, f"Join {payload.room} before scoring there", {"field": "room"}
            )
        total = await add_score(uow.session, payload.room, client.user_id, payload.points)
        await uow.commit()
        scored = Scored(payload.room, str(client.user_id), payload.points, total)
        await client.emit(GAME_SCORED, scored, room=payload.room)
        return scored

    @ws_event(
        "game:shout",
        "Emit `game:news` to `room`, on every node.",
        category="game",
        examples=[{"room": "game:a-open", "text": "hi"}],
    )
    @ws_response("game:shout", Done)
    async def shout(self, client: SocketContext, payload: ShoutIn) -> Done:
        await client.emit(GAME_NEWS, News(payload.text, str(client.user_id)), room=payload.room)
        return Done()

    @ws_event(
        "game:move",
        "Move to a table; clients show the move before the ack (optimistic), so a refusal rolls back.",
        category="game",
        examples=[{"room": "game:a-open"}],
        errors=[ErrorCode.FORBIDDEN, ErrorCode.VALIDATION_ERROR],
        optimistic=True,
    )
    @ws_response("game:move", RoomAck)
    async def move(self, client: SocketContext, payload: TableIn, rooms: RoomManager) -> RoomAck:
        await rooms.authorize(client.user_id, payload.room)
        return RoomAck(payload.room)

    @ws_event(
        "game:gather",
        "Every socket in `room` joins `target`.",
        category="game",
        examples=[{"room": "game:a-open", "target": "game:b-open"}],
    )
    @ws_response("game:gather", Done)
    async def gather(self, payload: MoveIn, hub: SocketHub) -> Done:
        await hub.sockets_join(payload.room, payload.target)
        return Done()

    @ws_event(
        "game:scatter",
        "Every socket in `room` leaves `target`.",
        category="game",
        examples=[{"room": "game:a-open", "target": "game:b-open"}],
    )
    @ws_response("game:scatter", Done)
    async def scatter(self, payload: MoveIn, hub: SocketHub) -> Done:
        await hub.sockets_leave(payload.room, payload.target)
        return Done()

    @ws_event(
        "game:end",
        "Disconnect every socket in `room`, telling each `game:over` first.",
        category="game",
        examples=[{"room": "game:a-open", "reason": "checkmate"}],
    )
    @ws_response("game:end", Done)
    async def end(self, payload: EndIn, hub: SocketHub) -> Done:
        await hub.disconnect_sockets(payload.room, event=GAME_OVER.name, data=Over(payload.reason))
        return Done()
