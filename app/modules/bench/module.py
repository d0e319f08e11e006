"""The bench module: echo and room broadcast for `bench/`, added by `create_app` only when
BENCH_EVENTS_ENABLED is true (off by default; keep it off in production)."""

from __future__ import annotations

from app.core.module import Module
from app.core.socket.rooms import AnyoneHook
from app.modules.bench.gateway import BENCH_ROOM_PREFIX, BenchGateway

bench_module = Module(
    name="bench",
    gateways=[BenchGateway],
    room_hooks={BENCH_ROOM_PREFIX: lambda _ctx: AnyoneHook()},
)
