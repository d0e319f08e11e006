"""The game module: what it brings to Parley, found through the `parley.modules` entry point."""

from __future__ import annotations

from pathlib import Path

from app.core.module import Module
from parley_game import models  # noqa: F401 - the table joins the metadata migrations compare against
from parley_game.controller import GameController
from parley_game.gateway import GameGateway
from parley_game.rooms import ROOM_PREFIX, GameHook

game_module = Module(
    name="game",
    controllers=[GameController],
    gateways=[GameGateway],
    room_hooks={ROOM_PREFIX: lambda _ctx: GameHook()},
    migrations=Path(__file__).parent / "migrations",
)
