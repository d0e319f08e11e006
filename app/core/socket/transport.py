"""Engine.IO's websocket transport, served without a writer task and without a task per message.

python-engineio serves a websocket with a reader that wraps every inbound message in a task and a
timeout, and a writer task that waits on the socket's queue, with a timeout, for every batch. Here:

- the reader awaits the ASGI `receive` directly; a client whose pongs stop is closed by Engine.IO's
  own service task, and the CLOSE packet that closing queues ends the websocket too;
- the socket's queue (`OutgoingQueue`, from the server's `create_queue`) writes each packet straight
  to the ASGI `send` when nothing waits before it. Only a send that has to wait (the transport's
  buffer is full) starts a drain task, which finishes it and then writes what queued up behind it,
  in order. A socket whose backlog passes `MAX_BACKLOG` is cut off by the fan-out manager.

The hook is Engine.IO's ASGI driver table: `ParleyEngine` replaces its websocket entry and its queue
factory. Polling sockets keep Engine.IO's own queue behaviour until they upgrade.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import engineio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

logger = logging.getLogger(__name__)

ASGISend = Callable[[dict[str, Any]], Awaitable[None]]
ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
CLOSE_WEBSOCKET: dict[str, Any] = {"type": "websocket.close"}


def asgi_message(pkt: Any) -> dict[str, Any]:
    """The ASGI `websocket.send` message of an Engine.IO packet (shared by every recipient if cached)."""
    message: dict[str, Any] | None = getattr(pkt, "asgi_message", None)
    if message is not None:
        return message
    encoded = pkt.encode()
    if isinstance(encoded, bytes):
        return {"type": "websocket.send", "bytes": encoded}
    return {"type": "websocket.send", "text": encoded}


class EncodedMessage(eio_packet.Packet):  # type: ignore[misc]
    """An Engine.IO message around Socket.IO text encoded once, written as is to every recipient."""

    def __init__(self, encoded: str) -> None:
        super().__init__(eio_packet.MESSAGE, encoded)
        self._encoded = f"{eio_packet.MESSAGE}{encoded}"
        self.asgi_message = {"type": "websocket.send", "text": self._encoded}

    def encode(self, b64: bool = False) -> str:  # noqa: ARG002 - Engine.IO's signature
        return self._encoded


class OutgoingQueue:
    """An Engine.IO socket's outgoing queue that, once a websocket is attached, writes through.

    It offers what Engine.IO uses of an `asyncio.Queue`. Packets queued before `attach` wait in a
    list; a long-polling transport's first read turns that into an `asyncio.Queue`. A websocket
    connection never needs one (nor the deques and event it carries): after `attach`, `put_nowait`
    writes the packet at once when no earlier packet is still waiting, `qsize` is the number
    waiting and `join` waits until they are written.
    """

    def __init__(self) -> None:
        self._send: ASGISend | None = None
        self._early: list[Any] = []
        self._polling: asyncio.Queue[Any] | None = None
        self._backlog: deque[dict[str, Any]] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._websocket_closed = False

    def attach(self, send: ASGISend) -> None:
        """Write through `send` from now on, starting with what was queued before."""
        waiting = self._take_waiting()
        self._send = send
        for item in waiting:
            self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        if self._send is None:
            if self._polling is not None:
                self._polling.put_nowait(item)
            else:
                self._early.append(item)
        elif item is None:
            self.close_websocket()
        elif not self._websocket_closed:
            self._write(asgi_message(item))
            if item.packet_type == eio_packet.CLOSE:
                self.close_websocket()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    async def get(self) -> Any:
        return await self._poll_queue().get()

    def get_nowait(self) -> Any:
        return self._poll_queue().get_nowait()

    def task_done(self) -> None:
        self._poll_queue().task_done()

    def qsize(self) -> int:
        if self._send is not None:
            return len(self._backlog) if self._backlog is not None else 0
        return self._polling.qsize() if self._polling is not None else len(self._early)

    def empty(self) -> bool:
        return self.qsize() == 0

    async def join(self) -> None:
        if self._send is None:
            await self._poll_queue().join()
        elif self._drainer is not None:
            await asyncio.shield(self._drainer)

    def close_websocket(self) -> None:
        """Close the websocket after what is already waiting; later packets are dropped."""
        if self._send is not None and not self._websocket_closed:
            self._write(CLOSE_WEBSOCKET)
            self._websocket_closed = True

    def _poll_queue(self) -> asyncio.Queue[Any]:
        if self._polling is None:
            self._polling = asyncio.Queue()
            for item in self._early:
                self._polling.put_nowait(item)
            self._early = []
        return self._polling

    def _take_waiting(self) -> list[Any]:
        """Everything queued and not yet read, in order, marked done for any `join`."""
        waiting, self._early = self._early, []
        if self._polling is not None:
            while not self._polling.empty():
                waiting.append(self._polling.get_nowait())
                self._polling.task_done()
        return waiting

    def cut_off(self) -> None:
        """Drop every packet still waiting; on a websocket, close it behind the one being written.

        What a consumer too far behind costs is then one packet, however long it stays connected.
        """
        if self._send is None:
            self._take_waiting()
            return
        if self._backlog is not None:
            self._backlog.clear()
        self.close_websocket()

    def _write(self, message: dict[str, Any]) -> None:
        if self._drainer is not None:
            if self._backlog is None:
                self._backlog = deque()
            self._backlog.append(message)
            return
        assert self._send is not None
        send = self._send(message)
        try:
            blocker = send.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return
        except Exception:  # noqa: BLE001 - the client is gone; the reader sees the disconnect
            self._abandon()
            return
        self._drainer = asyncio.ensure_future(self._drain(send, blocker))  # type: ignore[arg-type]

    async def _drain(self, send: Coroutine[Any, Any, None], blocker: Any) -> None:
        """Finish the send that had to wait, then write the backlog in order."""
        try:
            await finish(send, blocker)
            while self._backlog:
                await self._send(self._backlog.popleft())  # type: ignore[misc]
            self._backlog = None
        except Exception:  # noqa: BLE001 - as in `_write`
            self._abandon()
        finally:
            self._drainer = None

    def _abandon(self) -> None:
        self._backlog = None
        self._websocket_closed = True


async def finish(coro: Coroutine[Any, Any, None], blocker: Any) -> None:
    """Run to its end a coroutine that was stepped by hand and is now waiting on `blocker`.

    This is what an asyncio task does with what its coroutine yields: take over the future (clear
    its "blocking" mark, as the task would), wait for it, then resume the coroutine with its
    outcome. (A bare `yield`, as in `asyncio.sleep(0)`, yields None.)
    """
    try:
        while True:
            try:
                if blocker is None:
                    await asyncio.sleep(0)
                else:
                    blocker._asyncio_future_blocking = False
                    await blocker
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - handed back to the coroutine that waited
                blocker = coro.throw(exc)
            else:
                blocker = coro.send(None)
    except StopIteration:
        return
    finally:
        coro.close()


class DirectWebSocket:
    """Engine.IO's ASGI websocket entry: serves the socket being connected or upgraded."""

    def __init__(self, handler: Callable[..., Any], server: engineio.AsyncServer) -> None:
        # Engine.IO passes the socket's own handler, a bound method: its owner is the socket.
        self.socket = handler.__self__  # type: ignore[attr-defined]
        self.server = server

    async def __call__(self, environ: dict[str, Any]) -> str:
        receive: ASGIReceive = environ["asgi.receive"]
        send: ASGISend = environ["asgi.send"]
        await send({"type": "websocket.accept"})
        await serve_websocket(self.socket, self.server, receive, send)
        return ""


async def serve_websocket(socket: Any, server: Any, receive: ASGIReceive, send: ASGISend) -> None:
    """Read packets until the client leaves; packets to it are written by its queue."""
    queue: OutgoingQueue = socket.queue
    if socket.connected:
        if not await upgrade(socket, receive, send):
            return
    else:
        socket.connected = True
        socket.upgraded = True
    queue.attach(send)
    try:
        await read_packets(socket, server, receive)
    finally:
        queue.close_websocket()
        await queue.join()
        await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def read_packets(socket: Any, server: Any, receive: ASGIReceive) -> None:
    """Hand each packet on; a message goes to Socket.IO's handler in this reader, not in a task.

    Engine.IO would start a task for every message; what a message leads to that takes time
    (an event's handler) already runs in a task of its own.
    """
    limit = server.max_http_buffer_size
    on_message = server.handlers["message"]
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        if data is None or len(data) > limit:
            return
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except (ValueError, IndexError):
            logger.warning("closing %s: a frame that is no Engine.IO packet", socket.sid)
            return
        try:
            if pkt.packet_type == eio_packet.MESSAGE:
                await on_message(socket.sid, pkt.data)
            else:
                await socket.receive(pkt)
        except eio_exceptions.UnknownPacketError:
            continue
        except eio_exceptions.SocketIsClosedError:
            return
        except Exception:
            logger.exception("error handling a packet from %s", socket.sid)


async def upgrade(socket: Any, receive: ASGIReceive, send: ASGISend) -> bool:
    """Engine.IO's upgrade of a polling socket: `2probe` → `3probe`, end the poll, then `5`."""
    socket.upgrading = True
    probe = await _next_packet(receive)
    if probe is None or probe.packet_type != eio_packet.PING or probe.data != "probe":
        socket.upgrading = False
        return False
    await send(asgi_message(eio_packet.Packet(eio_packet.PONG, data="probe")))
    await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
    done = await _next_packet(receive)
    socket.upgrading = False
    if done is None or done.packet_type != eio_packet.UPGRADE:
        return False
    socket.upgraded = True
    return True


async def _next_packet(receive: ASGIReceive) -> Any:
    message = await receive()
    data = message.get("text") if message["type"] == "websocket.receive" else None
    if data is None:
        return None
    try:
        return eio_packet.Packet(encoded_packet=data)
    except Exception:  # noqa: BLE001 - a garbled upgrade fails the upgrade
        return None


class ParleyEngine(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO's server with the websocket transport above."""

    _async: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._async = {**self._async, "websocket": DirectWebSocket}

    def create_queue(self, *_args: Any, **_kwargs: Any) -> OutgoingQueue:
        return OutgoingQueue()

    sid_prefix = ""
    """Names the process owning each session (see `app.core.socket.sids`); set by the app factory."""

    def generate_id(self) -> str:
        return self.sid_prefix + str(super().generate_id())
