"""Bench-only events (`bench:ping`, `bench:join`, `bench:bcast`), registered only with
BENCH_EVENTS_ENABLED. They run through the real gateway: handshake, rate limits, validation, acks.
"""

from __future__ import annotations

from app.core.errors import ErrorCode
from app.core.socket import Gateway, SocketContext, server_event, ws_event, ws_response
from app.core.socket.hub import SocketHub
from app.core.socket.rooms import RoomManager
from app.modules.bench.schemas import BenchBroadcastIn, BenchData, BenchRoomIn, BenchRoomOut

BENCH_ROOM_PREFIX = "bench:"
_SAMPLE = {"s": 1, "m": "xxxxxxxx"}

BENCH_MSG = server_event(
    "bench:msg",
    BenchData,
    description="A `bench:bcast` sample delivered to every member of the room.",
    category="bench",
    room="bench:{name}",
    examples=[_SAMPLE],
)


class BenchGateway(Gateway):
    emits = (BENCH_MSG,)

    @ws_event(
        "bench:ping",
        "Echo: the ack carries the payload back.",
        category="bench",
        examples=[_SAMPLE],
        errors=[ErrorCode.VALIDATION_ERROR, ErrorCode.RATE_LIMITED],
    )
    @ws_response("bench:ping", BenchData)
    async def ping(self, payload: BenchData) -> BenchData:
        return payload

    @ws_event(
        "bench:join",
        "Join a `bench:` room.",
        category="bench",
        examples=[{"room": "bench:room1"}],
        errors=[ErrorCode.VALIDATION_ERROR, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED],
    )
    @ws_response("bench:join", BenchRoomOut)
    async def join(self, client: SocketContext, payload: BenchRoomIn, rooms: RoomManager) -> BenchRoomOut:
        await rooms.authorize(client.user_id, payload.room)
        await client.join(payload.room)
        return BenchRoomOut(room=payload.room)

    @ws_event(
        "bench:bcast",
        "Send `data` to every member of a `bench:` room as `bench:msg`.",
        category="bench",
        examples=[{"room": "bench:room1", "data": _SAMPLE}],
        errors=[ErrorCode.VALIDATION_ERROR, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED],
    )
    @ws_response("bench:bcast", BenchRoomOut)
    async def bcast(
        self, client: SocketContext, payload: BenchBroadcastIn, rooms: RoomManager, hub: SocketHub
    ) -> BenchRoomOut:
        await rooms.authorize(client.user_id, payload.room)
        await hub.emit(BENCH_MSG, payload.data, room=payload.room)
        return BenchRoomOut(room=payload.room)
