"""Payloads of the bench-only events: the same shapes the Node peer in `bench/` answers."""

from __future__ import annotations

import msgspec


class BenchData(msgspec.Struct):
    """An opaque sample: a sequence number and a filler string."""

    s: int = 0
    m: str = ""


class BenchRoomIn(msgspec.Struct):
    room: str


class BenchRoomOut(msgspec.Struct):
    room: str


class BenchBroadcastIn(msgspec.Struct):
    room: str
    data: BenchData
