"""`GET /api/game/tables/{table}/scores`: the standings of a table the caller may join."""

from __future__ import annotations

from litestar import Controller, get
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.core.http.envelope import Envelope, ok
from app.core.security.identity import Identity
from app.core.socket.rooms import RoomManager
from parley_game.rooms import room_of
from parley_game.schemas import Standings
from parley_game.scores import standings


class GameController(Controller):
    path = "/api/game"
    tags = ["game"]

    @get("/tables/{table:str}/scores", summary="Standings of a game table")
    async def scores(
        self, table: str, identity: Identity, app_ctx: AppContext, db_session: AsyncSession
    ) -> Envelope[Standings]:
        room = room_of(table)
        await app_ctx.get(RoomManager).authorize(identity.user_id, room)
        return ok(Standings(room, await standings(db_session, room)))
