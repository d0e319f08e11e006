"""Clients that do not play by the protocol, speaking raw Engine.IO/Socket.IO frames.

No packet may change who a socket is after the handshake; malformed packets are dropped with one
log line (never a traceback), repeated garbage closes the transport, and whatever way a socket
goes, its count, rate state and rooms go with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio
import websockets

from app.core.socket.engine.transport import transport_label
from tests.support.backends import Backend
from tests.support.clients import RecordingClient, external_token, register_and_login
from tests.support.raw import raw
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

GAME = "tests.support.game:create_asgi"
MAX_PER_USER = 2


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = backend.env(SOCKET_MAX_PER_USER=MAX_PER_USER, SOCKET_CONNECT_TIMEOUT=2)
    node = ServerProcess(env, tmp_path_factory.mktemp("hostile") / "server.log", GAME)
    yield node.start()
    node.stop()


def log_lines(server: ServerProcess, eio_sid: str) -> list[str]:
    """The lines naming a transport (by its label: an Engine.IO id itself is never logged)."""
    label = transport_label(eio_sid)
    return [line for line in server.log().splitlines() if label in line]


async def test_a_second_connect_cannot_change_identity(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    alice, bob = await register_and_login(http), await register_and_login(http)
    async with raw(server, alice.access_token) as sock:
        await sock.send("40" + json.dumps({"token": bob.access_token}))
        await sock.send("40/," + json.dumps({"token": bob.access_token}))
        assert (await sock.call("room:join", {"room": f"user:{alice.user_id}"}))["ok"] is True
        assert (await sock.call("room:join", {"room": f"user:{bob.user_id}"}))["error"]["code"] == "FORBIDDEN"
        assert (await sock.call("room:join", {"room": f"session:{bob.session_id}"}))["error"][
            "code"
        ] == "FORBIDDEN"
    assert len(log_lines(server, sock.eio_sid)) == 1, "one line for the first offence"


async def test_malformed_packets_are_dropped_quietly_and_repeated_garbage_closes(
    server: ServerProcess,
) -> None:
    async with raw(server, external_token(server)) as sock:
        for garbage in ("4garbage", '42["room:join"', "42{}", "42[1,2]", "4399[{}]"):
            await sock.send(garbage)
        await sock.closed()
    lines = log_lines(server, sock.eio_sid)
    assert len(lines) == 2, lines
    assert "dropped a packet" in lines[0]
    assert "closing" in lines[1]
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("frame", ["", "x", "\u00e9"])
async def test_a_frame_that_is_no_engine_io_packet_closes_the_transport_without_a_traceback(
    server: ServerProcess, frame: str
) -> None:
    async with raw(server, external_token(server)) as sock:
        await sock.send(frame)
        await sock.closed()
    lines = log_lines(server, sock.eio_sid)
    assert len(lines) == 1, lines
    assert "no Engine.IO packet" in lines[0]
    assert "Traceback" not in server.log()


async def test_a_few_bad_packets_leave_the_socket_working(server: ServerProcess) -> None:
    async with raw(server, external_token(server)) as sock:
        await sock.send(b"\x04binary attachment")
        await sock.send('451-["room:join",{"_placeholder":true,"num":0}]')
        await sock.send("4312[]")
        await sock.send("430[]")
        assert (await sock.call("room:join", {"room": "broadcast:still-here"}))["ok"] is True
        await sock.send("40/admin,{}")
        assert (await sock.packet()).startswith("4/admin,"), "an unknown namespace is refused"
        assert (await sock.call("room:join", {"room": "broadcast:still-here"}))["ok"] is True, "`/` stays"
    assert "Traceback" not in server.log()


async def test_events_before_the_namespace_handshake_are_dropped(server: ServerProcess) -> None:
    async with raw(server) as sock:
        await sock.send('420["room:join",{"room":"broadcast:all"}]')
        await sock.send('42["game:shout",{"room":"broadcast:all","text":"sneaky"}]')
        await sock.send("40" + json.dumps({"token": external_token(server)}))
        assert (await sock.packet()).startswith("0{")
        assert (await sock.packet()).startswith('2["session:ready"'), "nothing answered the early events"
        assert (await sock.call("room:join", {"room": "broadcast:x"}))["ok"] is True


async def test_hostile_shapes_are_answered_not_crashed_on(server: ServerProcess) -> None:
    async with raw(server, external_token(server)) as sock:
        long_name = "x" * 3000
        answer = await sock.call(long_name, {})
        assert answer["error"]["code"] == "NOT_FOUND"
        assert len(answer["error"]["message"]) < 200
        deep: Any = "room"
        for _ in range(500):
            deep = [deep]
        assert (await sock.call("room:join", {"room": deep}))["error"]["code"] == "VALIDATION_ERROR"
        assert (await sock.call("room:join", {"room": "\u0000:\u202e"}))["error"][
            "code"
        ] == "VALIDATION_ERROR"
    assert "Traceback" not in server.log()


async def test_a_python_client_emitting_bytes_is_dropped_not_crashed(server: ServerProcess) -> None:
    client = RecordingClient()
    await client.connect(server.url, external_token(server))
    await client.wait_for("session:ready")
    try:
        await client.sio.emit("room:join", {"room": b"\x00\x01"})
        assert (await client.call("room:join", {"room": "broadcast:after-bytes"}))["ok"] is True
    finally:
        await client.close()


async def test_every_way_of_leaving_frees_the_users_socket_slots(server: ServerProcess) -> None:
    subject = str(uuid.uuid4())
    token = external_token(server, subject)
    async with raw(server, token) as polite:
        await polite.send("41")
        await polite.closed()
    async with raw(server, token) as garbage:
        for _ in range(5):
            await garbage.send("4!")
        await garbage.closed()
    with contextlib.suppress(websockets.ConnectionClosed):
        async with raw(server, token) as rude:
            rude.ws.transport.abort()
    async with raw(server, token) as clean:
        await clean.send("1")
    slots = [await connect_when_freed(server, token) for _ in range(MAX_PER_USER)]
    try:
        over = RecordingClient()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await over.connect(server.url, token)
        assert over.connect_error["data"]["code"] == "RATE_LIMITED"
    finally:
        for client in slots:
            await client.close()


async def connect_when_freed(server: ServerProcess, token: str) -> RecordingClient:
    """Connect, retrying while the server has not yet processed an earlier socket's departure."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        client = RecordingClient()
        try:
            await client.connect(server.url, token)
        except socketio.exceptions.ConnectionError:
            assert client.connect_error["data"]["code"] == "RATE_LIMITED"
            assert asyncio.get_running_loop().time() < deadline, "a departed socket still counts"
            continue
        await client.wait_for("session:ready")
        return client


async def test_same_origin_is_the_default_and_forwarded_hosts_cannot_widen_it(server: ServerProcess) -> None:
    cases = [
        ({"Origin": server.url}, True),
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "http://evil.example", "X-Forwarded-Host": "evil.example"}, False),
        (
            {
                "Origin": "https://evil.example",
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Proto": "https",
            },
            False,
        ),
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        for headers, allowed in cases:
            response = await http.get(
                "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=headers
            )
            assert (response.status_code == 200) is allowed, (headers, response.text)
