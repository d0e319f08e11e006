"""What the game's events and route carry: each Struct validates what comes in and documents it."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.core.socket.protocol import RoomName

Points = Annotated[int, msgspec.Meta(ge=1, le=100, description="points scored in one go")]


class MoveIn(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName
    target: RoomName


class ShoutIn(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName
    text: str


class EndIn(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName
    reason: str


class TableIn(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName


class ScoreIn(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName
    points: Points


class Scored(msgspec.Struct):
    room: str
    user_id: str
    points: int
    total: int
    """The player's total at this table, this score included."""


class News(msgspec.Struct):
    text: str
    by: str


class Over(msgspec.Struct):
    reason: str


class Done(msgspec.Struct):
    done: bool = True


class Standing(msgspec.Struct):
    user_id: str
    total: int


class Standings(msgspec.Struct):
    room: str
    standings: list[Standing]
    """Players by total, highest first."""
