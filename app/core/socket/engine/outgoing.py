"""What a socket is sent: packets encoded once, and one bounded outgoing queue per Engine.IO socket.

Every packet to a socket goes through its `OutgoingQueue`: acks, events to the socket, fan-out and
Engine.IO's own pings. On a websocket the queue writes each packet straight to the ASGI `send`
when nothing waits before it; only a send that has to wait (the client does not read) starts a drain
task, and what comes behind it waits in a backlog. On long-polling every packet waits until the
client's next GET. Either way, what waits is bounded in packets and in bytes: the packet that would
pass a bound empties the queue, is dropped with everything after it, and the socket's owner is told
(`on_overflow`) so it can cut the client off. A queue that is `release`d when its socket closes
holds nothing more, whatever still points at it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from engineio import packet as eio_packet

from app.core.http.websocket_protocol import FrameWriter, server_frame

ASGISend = Callable[[dict[str, Any]], Awaitable[None]]
CLOSE_WEBSOCKET: dict[str, Any] = {"type": "websocket.close"}
NOOP = eio_packet.Packet(eio_packet.NOOP)
"""What ends a long-polling GET of a closed session (as Engine.IO's reference server answers it)."""


def asgi_message(pkt: Any) -> dict[str, Any]:
    """The ASGI `websocket.send` message of an Engine.IO packet (shared by every recipient if cached)."""
    message: dict[str, Any] | None = getattr(pkt, "asgi_message", None)
    if message is not None:
        return message
    encoded = pkt.encode()
    if isinstance(encoded, bytes):
        return {"type": "websocket.send", "bytes": encoded}
    return {"type": "websocket.send", "text": encoded}


def websocket_frame(pkt: Any) -> bytes:
    """The websocket frame of an Engine.IO packet (shared by every recipient if cached as `frame`)."""
    frame: bytes | None = getattr(pkt, "frame", None)
    if frame is not None:
        return frame
    return server_frame(pkt.encode())


class EncodedMessage(eio_packet.Packet):  # type: ignore[misc]
    """An Engine.IO message around Socket.IO text encoded once, written as is to every recipient."""

    def __init__(self, encoded: str) -> None:
        super().__init__(eio_packet.MESSAGE, encoded)
        self._encoded = f"{eio_packet.MESSAGE}{encoded}"
        self.asgi_message = {"type": "websocket.send", "text": self._encoded}
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        """Framed on first use, for the first websocket recipient, and written as is to the others.

        (Not a `cached_property`, which on Python 3.11 takes a lock on every read.)
        """
        if self._frame is None:
            self._frame = server_frame(self._encoded)
        return self._frame

    def encode(self, b64: bool = False) -> str:  # noqa: ARG002 - Engine.IO's signature
        return self._encoded


def text_size(text: str | bytes) -> int:
    """Bytes on the wire: UTF-8 for text (encoded only when it is not plain ASCII)."""
    if isinstance(text, bytes) or text.isascii():
        return len(text)
    return len(text.encode())


def packet_size(pkt: Any) -> int:
    """The size of an Engine.IO packet as the client receives it; 0 for the queue's end marker."""
    if pkt is None:
        return 0
    if pkt.binary:  # encoding a binary packet now would cache the wrong (non-base64) form for polling
        return len(pkt.data)
    return text_size(pkt.encode())


def message_size(message: dict[str, Any]) -> int:
    data = message.get("text")
    if data is None:
        data = message.get("bytes")
    return text_size(data) if data is not None else 0


@dataclass(frozen=True, slots=True)
class BacklogLimit:
    """How much may wait to be sent to one socket (SOCKET_MAX_BACKLOG_BYTES, _PACKETS)."""

    max_bytes: int
    max_packets: int


class OutgoingQueue:
    """An Engine.IO socket's outgoing queue with a bounded backlog that, on a websocket, writes through.

    It offers what Engine.IO uses of an `asyncio.Queue`. Packets queued before `attach` wait in a
    list; a long-polling transport's first read turns that into an `asyncio.Queue`. A websocket
    connection never needs one: after `attach`, `put_nowait` writes the packet at once when no
    earlier packet is still waiting, `qsize` is the number waiting and `join` waits until they are
    written. `waiting_bytes` and `qsize` are what counts against the `BacklogLimit`; a packet being
    written does not.
    """

    def __init__(self, limit: BacklogLimit) -> None:
        self.limit = limit
        self.on_overflow: Callable[[], None] | None = None
        self.waiting_bytes = 0
        self._sizes: deque[int] | None = None
        """Sizes of the packets waiting, while any wait (a deque is over 600 bytes, idle or not)."""
        self._send: ASGISend | None = None
        self._write_frame: FrameWriter | None = None
        self._early: list[Any] = []
        self._polling: asyncio.Queue[Any] | None = None
        self._readers = 0
        self._backlog: deque[dict[str, Any]] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._websocket_closed = False
        self._dropping = False

    @property
    def reading(self) -> bool:
        """A long-polling GET is waiting for packets."""
        return self._readers > 0

    def attach(self, send: ASGISend, write_frame: FrameWriter | None = None) -> None:
        """Write through `send` from now on, starting with what was queued before; with the
        server's `write_frame` (`websocket_protocol.py`), each packet's frame whenever it takes it."""
        waiting = self._take_waiting()
        self._send = send
        self._write_frame = write_frame
        for item in waiting:
            self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        if self._dropping:
            return
        if self._send is None:
            if not self._admit(packet_size(item), item is not None):
                return
            if self._polling is not None:
                self._polling.put_nowait(item)
            else:
                self._early.append(item)
        elif item is None:
            self.close_websocket()
        elif not self._websocket_closed:
            if not self._framed(item):
                self._write(asgi_message(item))
            if item.packet_type == eio_packet.CLOSE:
                self.close_websocket()

    def put_message(self, encoded: str) -> None:
        """Queue Socket.IO text for this socket alone (an ack): on a websocket where nothing waits
        before it, framed and written at once, with no packet object; otherwise as `put_nowait`."""
        write = self._write_frame
        if (
            write is None
            or self._drainer is not None
            or self._websocket_closed
            or not write(server_frame(f"{eio_packet.MESSAGE}{encoded}"))
        ):
            self.put_nowait(EncodedMessage(encoded))

    def deliver(self, pkt: EncodedMessage, frame: bytes) -> None:
        """Queue a message framed once for many sockets (`frame` is `pkt.frame`): the fan-out's
        per-recipient step, written at once on a websocket where nothing waits before it."""
        write = self._write_frame
        if write is None or self._drainer is not None or self._websocket_closed or not write(frame):
            self.put_nowait(pkt)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    async def get(self) -> Any:
        if self._dropping:
            # Released or cut off: nothing more will come. A GET that passed the session check
            # before the session closed reaches here after `release`; it ends at once, not at its
            # ping interval and timeout.
            self._poll_queue().put_nowait(NOOP)
        self._readers += 1
        try:
            item = await self._poll_queue().get()
        finally:
            self._readers -= 1
        self._taken()
        return item

    def get_nowait(self) -> Any:
        item = self._poll_queue().get_nowait()
        self._taken()
        return item

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
            await asyncio.wait({self._drainer})

    def close_websocket(self) -> None:
        """Close the websocket after what is already waiting; later packets are dropped."""
        if self._send is not None and not self._websocket_closed:
            self._write(CLOSE_WEBSOCKET)
            self._websocket_closed = True

    def release(self) -> None:
        """The socket is closed: drop what waits, let go of the transport, accept nothing more.

        Whatever still holds the queue (a late emit, Engine.IO's bookkeeping) then holds no packet
        and no connection: a closed websocket's `send` is bound to the server's protocol object,
        with its buffers and compression state.
        """
        self._dropping = True
        self._drop_waiting()
        self._send = None
        self._write_frame = None
        self.on_overflow = None  # the socket it points back to is then freed without waiting for a collection
        if self._readers:  # end a waiting long-polling GET with a NOOP, as Engine.IO's reference server does
            self._poll_queue().put_nowait(NOOP)

    def _admit(self, size: int, counted: bool) -> bool:
        """Count a packet that is about to wait; past the limit, drop everything and report it."""
        if self._sizes is None:
            self._sizes = deque()
        if counted and (
            len(self._sizes) >= self.limit.max_packets or self.waiting_bytes + size > self.limit.max_bytes
        ):
            self._overflow()
            return False
        self._sizes.append(size)
        self.waiting_bytes += size
        return True

    def _taken(self) -> None:
        if self._sizes:
            self.waiting_bytes -= self._sizes.popleft()
            if not self._sizes:
                self._sizes = None

    def _overflow(self) -> None:
        """Drop what waits and accept nothing more; a websocket's connection is dropped at once."""
        self._drop_waiting()
        self.close_websocket()
        self._dropping = True
        if self._send is not None:
            abort_connection(self._send)
        if self.on_overflow is not None:
            self.on_overflow()

    def _drop_waiting(self) -> None:
        self._take_waiting()
        if self._backlog is not None:
            self._backlog.clear()
        self._sizes = None
        self.waiting_bytes = 0

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
        self._sizes = None
        self.waiting_bytes = 0
        return waiting

    def _framed(self, pkt: Any) -> bool:
        """Write the packet's frame directly when nothing waits before it and the server takes it."""
        return (
            self._drainer is None
            and self._write_frame is not None
            and self._write_frame(websocket_frame(pkt))
        )

    def _write(self, message: dict[str, Any]) -> None:
        if self._drainer is not None:
            if self._admit(message_size(message), message is not CLOSE_WEBSOCKET):
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
            while self._backlog and self._send is not None:
                message = self._backlog.popleft()
                self._taken()
                await self._send(message)
            self._backlog = None
        except Exception:  # noqa: BLE001 - as in `_write`
            self._abandon()
        finally:
            self._drainer = None

    def _abandon(self) -> None:
        self._backlog = None
        self._sizes = None
        self.waiting_bytes = 0
        self._websocket_closed = True


def abort_connection(send: ASGISend) -> None:
    """Drop the connection under an ASGI websocket `send` at once, where the server lets us.

    ASGI has no abort, and a close frame queued behind data the client does not read never leaves,
    so the server's buffers would hold that data for as long as the client keeps the connection
    open. uvicorn's `send` is a bound method of its protocol object, whose transport can be aborted;
    under a server that exposes nothing of the kind, the websocket closes once the client reads.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()


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
