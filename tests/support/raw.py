"""Socket.IO by hand: Engine.IO/Socket.IO frames over one websocket, for what no client library sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import websockets

from tests.support.server import ServerProcess


class RawSocket:
    """One websocket transport, frames in and out by hand."""

    def __init__(self, ws: Any, eio_sid: str) -> None:
        self.ws = ws
        self.eio_sid = eio_sid
        self.acks = 0

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def packet(self) -> str:
        """The next Socket.IO packet (Engine.IO `4` stripped), answering pings on the way."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), 5)
            if frame == "2":
                await self.ws.send("3")
                continue
            assert isinstance(frame, str), frame
            assert frame.startswith("4"), frame
            return frame[1:]

    async def ack(self, ack_id: int) -> Any:
        """The next packet, which must be the ack of `ack_id`; its data."""
        answer = await self.packet()
        assert answer.startswith(f"3{ack_id}["), answer
        return json.loads(answer[1 + len(str(ack_id)) :])[0]

    async def call(self, event: str, data: Any) -> Any:
        self.acks += 1
        await self.send(f"42{self.acks}" + json.dumps([event, data]))
        return await self.ack(self.acks)

    async def closed(self) -> None:
        """Wait until the server ends the transport (a CLOSE frame or the websocket closing)."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while (frame := await asyncio.wait_for(self.ws.recv(), 5)) != "1":
                assert frame == "2" or str(frame).startswith("4"), frame


def stalled_socket(server: ServerProcess) -> socket.socket:
    """A connected TCP socket with a small receive buffer, so an unread backlog builds on the server."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def raw(server: ServerProcess, token: str | None = None, **options: Any) -> AsyncIterator[RawSocket]:
    """A transport; with a token, joined to `/` and past `session:ready`. `options` go to `connect`."""
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, **options) as ws:
        opened = str(await ws.recv())
        sock = RawSocket(ws, json.loads(opened[1:])["sid"])
        if token is not None:
            await ws.send("40" + json.dumps({"token": token}))
            assert (await sock.packet()).startswith("0{")
            assert (await sock.packet()).startswith('2["session:ready"')
        yield sock
