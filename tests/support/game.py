"""The example game module (examples/game, installed as `parley-game`) plus the tests' own probes.

The game gives the tests its `game:` rooms and their hook, and handles on the hub's cross-node
operations (`game:gather`, `game:scatter`, `game:end`). The probes, which no application would
ship, reach the dispatcher's limits: `game:hold` blocks until `game:release`, `game:boom` fails
inside the database. Both are named by PARLEY_MODULES, as an application names its modules:
`uvicorn --factory tests.support.game:create_asgi`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict

import msgspec
import socketio
from sqlalchemy import text

from app.config.settings import get_settings
from app.core.db import UnitOfWork
from app.core.errors import ErrorCode
from app.core.module import Module
from app.core.socket import Gateway, ws_event, ws_response
from app.main import create_app

GAME_MODULES = ("game", f"{__name__}:probes_module")
"""PARLEY_MODULES of a server with the game and the probes."""


class HoldIn(msgspec.Struct, forbid_unknown_fields=True):
    key: str


class Done(msgspec.Struct):
    done: bool = True


class Peak(msgspec.Struct):
    running: int
    peak: int


class HoldState:
    """Handlers parked by `game:hold`, per key, and how many ran at once (this process only)."""

    def __init__(self) -> None:
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.running: defaultdict[str, int] = defaultdict(int)
        self.peak: defaultdict[str, int] = defaultdict(int)


class ProbeGateway(Gateway):
    @ws_event(
        "game:hold", "Run until `game:release` with the same key.", category="game", examples=[{"key": "k"}]
    )
    @ws_response("game:hold", Done)
    async def hold(self, payload: HoldIn, holds: HoldState) -> Done:
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
    @ws_response("game:release", Peak)
    async def release(self, payload: HoldIn, holds: HoldState) -> Peak:
        holds.gates[payload.key].set()
        return Peak(holds.running[payload.key], holds.peak[payload.key])

    @ws_event(
        "game:peek",
        "How many `game:hold` of the key run now, and at most so far.",
        category="game",
        examples=[{"key": "k"}],
    )
    @ws_response("game:peek", Peak)
    async def peek(self, payload: HoldIn, holds: HoldState) -> Peak:
        return Peak(holds.running[payload.key], holds.peak[payload.key])

    @ws_event(
        "game:boom",
        "Fail inside the database with an error that names SQL; takes no payload.",
        category="game",
        errors=[ErrorCode.INTERNAL],
    )
    @ws_response("game:boom", Done)
    async def boom(self, uow: UnitOfWork) -> Done:
        await uow.session.execute(text("SELECT secret_column FROM no_such_table_for_parley"))
        return Done()


probes_module = Module(
    name="game-probes",
    gateways=[ProbeGateway],
    providers={HoldState: lambda _ctx: HoldState()},
)


def create_asgi() -> socketio.ASGIApp:
    return create_app(dataclasses.replace(get_settings(), modules=GAME_MODULES)).asgi
