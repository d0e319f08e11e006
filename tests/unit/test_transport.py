"""The websocket write path: an attached queue writes through at once, keeps order behind a send
that has to wait, closes the websocket after a CLOSE packet and drops what follows a failed send."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engineio import packet as eio_packet

from app.core.socket.transport import CLOSE_WEBSOCKET, OutgoingQueue, finish


class FakeWebSocket:
    """An ASGI websocket `send`: writes at once while the transport is writable, waits while not."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.gone = False
        self.messages: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        if self.gone:
            raise OSError("the client is gone")
        self.messages.append(message)

    def texts(self) -> list[str | None]:
        return [message.get("text") for message in self.messages]


def message(text: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, text)


@pytest.fixture
def ws() -> FakeWebSocket:
    return FakeWebSocket()


async def test_before_attach_it_is_a_plain_queue() -> None:
    queue = OutgoingQueue()

    queue.put_nowait(message("a"))
    await queue.put(message("b"))

    assert queue.qsize() == 2
    assert [queue.get_nowait().data for _ in range(2)] == ["a", "b"]


async def test_a_polling_read_waits_for_the_next_packet_and_join_for_its_reading() -> None:
    queue = OutgoingQueue()
    read = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not read.done()

    queue.put_nowait(message("a"))
    assert (await asyncio.wait_for(read, 1)).data == "a"
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    assert not joined.done()
    queue.task_done()
    await asyncio.wait_for(joined, 1)


async def test_an_upgrade_writes_what_the_polling_transport_left_unread(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue()
    queue.put_nowait(message("read by a poll"))
    queue.get_nowait()
    queue.task_done()
    queue.put_nowait(message("left"))

    queue.attach(ws.send)

    assert ws.texts() == ["4left"]
    await asyncio.wait_for(queue.join(), 1)


async def test_attach_writes_what_waited_then_writes_through_without_yielding(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue()
    queue.put_nowait(message("early"))

    queue.attach(ws.send)
    queue.put_nowait(message("late"))

    assert ws.texts() == ["4early", "4late"]
    assert queue.qsize() == 0
    await asyncio.wait_for(queue.join(), 1)


async def test_a_send_that_has_to_wait_keeps_the_order_of_everything_behind_it(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue()
    queue.attach(ws.send)
    ws.writable.clear()

    for text in "abc":
        queue.put_nowait(message(text))

    assert ws.texts() == []
    assert queue.qsize() == 2  # "a" is in the send that waits; "b" and "c" are behind it
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    assert not joined.done()

    ws.writable.set()
    await asyncio.wait_for(joined, 1)
    queue.put_nowait(message("d"))

    assert ws.texts() == ["4a", "4b", "4c", "4d"]
    assert queue.qsize() == 0


async def test_a_close_packet_closes_the_websocket_and_later_packets_are_dropped(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue()
    queue.attach(ws.send)

    queue.put_nowait(message("bye"))
    queue.put_nowait(eio_packet.Packet(eio_packet.CLOSE))
    queue.put_nowait(message("too late"))
    queue.put_nowait(None)

    assert ws.messages[-1] == CLOSE_WEBSOCKET
    assert ws.texts() == ["4bye", "1", None]


async def test_after_a_failed_send_nothing_more_is_written_or_kept(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue()
    queue.attach(ws.send)
    ws.writable.clear()
    queue.put_nowait(message("a"))
    queue.put_nowait(message("b"))

    ws.gone = True
    ws.writable.set()
    await asyncio.wait_for(queue.join(), 1)
    queue.put_nowait(message("c"))

    assert ws.messages == []
    assert queue.qsize() == 0


async def test_the_message_of_a_shared_packet_is_written_as_is(ws: FakeWebSocket) -> None:
    pkt = message("x")
    pkt.asgi_message = {"type": "websocket.send", "text": "4x"}  # type: ignore[attr-defined]
    queue = OutgoingQueue()
    queue.attach(ws.send)

    queue.put_nowait(pkt)

    assert ws.messages[0] is pkt.asgi_message  # type: ignore[attr-defined]


async def test_finish_hands_a_failure_back_to_the_coroutine_that_waited() -> None:
    failing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def waits_then_recovers() -> None:
        try:
            await failing
        except ValueError as exc:
            seen.append(str(exc))
        await asyncio.sleep(0)  # a bare yield
        seen.append("done")

    coro = waits_then_recovers()
    blocker = coro.send(None)
    failing.set_exception(ValueError("transport failed"))
    await asyncio.wait_for(finish(coro, blocker), 1)

    assert seen == ["transport failed", "done"]
