"""The bench-only events: off by default, and with BENCH_EVENTS_ENABLED they run through the real
gateway (authenticated handshake, validation, acks) like every other event."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from app.core.socket.registry import EventRegistry
from app.main import create_app
from tests.support.backends import Backend
from tests.support.clients import RecordingClient, external_token
from tests.support.raw import RawSocket, raw, stalled_socket
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

BENCH_EVENTS = {"bench:ping", "bench:join", "bench:bcast", "bench:msg"}
BACKLOG_PACKETS = 64


def registered_events(backend: Backend, **env: Any) -> set[str]:
    registry = create_app(backend.settings(**env)).context.get(EventRegistry)
    return {spec.name for spec in registry.all_events()}


def test_bench_events_are_registered_only_when_enabled(backend: Backend) -> None:
    assert not BENCH_EVENTS & registered_events(backend)
    assert registered_events(backend, BENCH_EVENTS_ENABLED="true") >= BENCH_EVENTS


async def test_echo_join_and_broadcast_through_the_gateway(
    backend: Backend,
    start_server: Callable[..., ServerProcess],
    clients: Callable[[], RecordingClient],
) -> None:
    server = start_server(backend, BENCH_EVENTS_ENABLED="true")
    member, sender = clients(), clients()
    await member.connect(server.url, external_token(server))
    await sender.connect(server.url, external_token(server))

    assert await member.call("bench:ping", {"s": 7, "m": "hi"}) == {"ok": True, "data": {"s": 7, "m": "hi"}}
    assert await member.call("bench:join", {"room": "bench:r1"}) == {"ok": True, "data": {"room": "bench:r1"}}
    sent = await sender.call("bench:bcast", {"room": "bench:r1", "data": {"s": 1, "m": "x"}})

    assert sent == {"ok": True, "data": {"room": "bench:r1"}}
    assert await member.wait_for("bench:msg") == {"s": 1, "m": "x"}
    assert "bench:msg" not in sender.events


async def test_bad_payloads_and_foreign_rooms_are_refused(
    backend: Backend,
    start_server: Callable[..., ServerProcess],
    clients: Callable[[], RecordingClient],
) -> None:
    server = start_server(backend, BENCH_EVENTS_ENABLED="true")
    client = clients()
    await client.connect(server.url, external_token(server))

    bad = await client.call("bench:ping", {"s": "seven"})
    foreign = await client.call("bench:join", {"room": "user:someone-else"})

    assert bad["ok"] is False
    assert bad["error"]["code"] == "VALIDATION_ERROR"
    assert foreign["ok"] is False
    assert foreign["error"]["code"] == "FORBIDDEN"


async def test_without_the_setting_the_events_do_not_exist(
    backend: Backend,
    start_server: Callable[..., ServerProcess],
    clients: Callable[[], RecordingClient],
) -> None:
    server = start_server(backend)
    client = clients()
    await client.connect(server.url, external_token(server))

    answer = await client.call("bench:ping", {"s": 1, "m": "x"})

    assert answer["ok"] is False
    assert answer["error"]["code"] == "NOT_FOUND"


async def test_a_consumer_that_stops_reading_is_cut_off_and_the_others_get_everything(
    backend: Backend,
    start_server: Callable[..., ServerProcess],
    clients: Callable[[], RecordingClient],
) -> None:
    server = start_server(
        backend,
        BENCH_EVENTS_ENABLED="true",
        RATE_LIMIT_DEFAULT="100000/1",
        SOCKET_MAX_BACKLOG_PACKETS=BACKLOG_PACKETS,
        SOCKET_MAX_BACKLOG_BYTES=1 << 30,
    )
    member, sender = clients(), clients()
    await member.connect(server.url, external_token(server))
    await sender.connect(server.url, external_token(server))
    await member.call("bench:join", {"room": "bench:slow"})
    filler = "x" * 30_000  # the stalled socket declines compression, so this fills its buffers
    async with raw(server, external_token(server), sock=stalled_socket(server), compression=None) as stalled:
        await stalled.call("bench:join", {"room": "bench:slow"})
        stalled.ws.transport.pause_reading()
        sent = 0
        while "cutting it off" not in server.log():
            assert sent < 5000, "the stalled socket was never cut off"
            await sender.call("bench:bcast", {"room": "bench:slow", "data": {"s": sent, "m": filler}})
            sent += 1
        stalled.ws.transport.resume_reading()
        delivered = await messages_until_closed(stalled)

    assert delivered <= sent - 1 - BACKLOG_PACKETS  # the backlog at the cut-off was dropped
    assert (await member.wait_for("bench:msg", index=sent - 1))["s"] == sent - 1
    assert [data["s"] for data in member.events["bench:msg"]] == list(range(sent))
    assert await member.call("bench:ping", {"s": 1}) == {"ok": True, "data": {"s": 1, "m": ""}}


async def messages_until_closed(sock: RawSocket) -> int:
    """Read what reached a stalled socket until the server closes it; how many `bench:msg` came."""
    delivered = 0
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            frame = await asyncio.wait_for(sock.ws.recv(), 10)
            delivered += str(frame).startswith('42["bench:msg"')
    return delivered


async def test_a_broadcast_reaches_compressed_and_plain_websockets_alike(
    backend: Backend,
    start_server: Callable[..., ServerProcess],
    clients: Callable[[], RecordingClient],
) -> None:
    """One frame serves every websocket that negotiated nothing; one that negotiated permessage-deflate
    gets the same messages compressed; sizes cross each frame length encoding, text is not ASCII."""
    server = start_server(
        backend, BENCH_EVENTS_ENABLED="true", SOCKET_MAX_PAYLOAD_BYTES=300_000, SOCKET_WS_COMPRESSION="true"
    )
    sender = clients()
    await sender.connect(server.url, external_token(server))
    fillers = ["", "é" * 40, "x" * 200, "한" * 30_000, "y" * 70_000]
    async with (
        raw(server, external_token(server), compression=None) as plain,
        raw(server, external_token(server), compression="deflate") as compressed,
    ):
        assert compressed.ws.protocol.extensions, "the client negotiated permessage-deflate"
        assert not plain.ws.protocol.extensions
        for sock in (plain, compressed):
            await sock.call("bench:join", {"room": "bench:both"})
        for s, filler in enumerate(fillers):
            await sender.call("bench:bcast", {"room": "bench:both", "data": {"s": s, "m": filler}})
        for sock in (plain, compressed):
            received = [json.loads((await sock.packet())[1:])[1] for _ in fillers]
            assert received == [{"s": s, "m": filler} for s, filler in enumerate(fillers)]


async def test_by_default_an_offer_of_compression_is_declined_and_the_socket_works(
    backend: Backend,
    start_server: Callable[..., ServerProcess],
    clients: Callable[[], RecordingClient],
) -> None:
    server = start_server(backend, BENCH_EVENTS_ENABLED="true")
    sender = clients()
    await sender.connect(server.url, external_token(server))
    async with raw(server, external_token(server), compression="deflate") as offered:
        assert not offered.ws.protocol.extensions, "permessage-deflate was declined"
        assert await offered.call("bench:join", {"room": "bench:plain"}) == {
            "ok": True,
            "data": {"room": "bench:plain"},
        }
        await sender.call("bench:bcast", {"room": "bench:plain", "data": {"s": 1, "m": "é"}})
        assert json.loads((await offered.packet())[1:]) == ["bench:msg", {"s": 1, "m": "é"}]
