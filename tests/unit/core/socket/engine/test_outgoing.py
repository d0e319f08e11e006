"""The outgoing queue: an attached queue writes through at once (a packet's frame as is, where the
server takes frames), keeps order behind a send that has to wait, closes the websocket after a CLOSE
packet and drops what follows a failed send; what waits is bounded in packets and bytes, on a
websocket and on long-polling alike; a released queue holds nothing."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from engineio import packet as eio_packet
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from app.core.http.websocket_protocol import server_frame
from app.core.socket.engine.outgoing import (
    CLOSE_WEBSOCKET,
    BacklogLimit,
    EncodedMessage,
    OutgoingQueue,
    finish,
)


class Transport:
    """What a server's protocol object exposes of its connection: `abort`."""

    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class FakeWebSocket:
    """An ASGI websocket `send`: writes at once while the transport is writable, waits while not.

    Like uvicorn's, it is a bound method of an object that holds the connection's `transport`."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.gone = False
        self.messages: list[dict[str, Any]] = []
        self.transport = Transport()

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        if self.gone:
            raise OSError("the client is gone")
        self.messages.append(message)

    def texts(self) -> list[str | None]:
        return [message.get("text") for message in self.messages]


class FrameTakingWebSocket(FakeWebSocket):
    """A websocket whose server also takes frames (`FrameWritingProtocol.write_frame`): while the
    transport is writable and nothing was negotiated that changes frames (`compressed`)."""

    def __init__(self) -> None:
        super().__init__()
        self.compressed = False
        self.frames: list[bytes] = []

    def write_frame(self, frame: bytes) -> bool:
        if self.compressed or not self.writable.is_set():
            return False
        self.frames.append(frame)
        self.messages.append({"type": "websocket.send", "text": bytes(parsed(frame).data).decode()})
        return True


ROOMY = BacklogLimit(max_bytes=1 << 20, max_packets=100)


def message(text: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, text)


@pytest.fixture
def ws() -> FakeWebSocket:
    return FakeWebSocket()


async def test_before_attach_it_is_a_plain_queue() -> None:
    queue = OutgoingQueue(ROOMY)

    queue.put_nowait(message("a"))
    await queue.put(message("b"))

    assert queue.qsize() == 2
    assert [queue.get_nowait().data for _ in range(2)] == ["a", "b"]


async def test_a_polling_read_waits_for_the_next_packet_and_join_for_its_reading() -> None:
    queue = OutgoingQueue(ROOMY)
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
    queue = OutgoingQueue(ROOMY)
    queue.put_nowait(message("read by a poll"))
    queue.get_nowait()
    queue.task_done()
    queue.put_nowait(message("left"))

    queue.attach(ws.send)

    assert ws.texts() == ["4left"]
    await asyncio.wait_for(queue.join(), 1)


async def test_attach_writes_what_waited_then_writes_through_without_yielding(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue(ROOMY)
    queue.put_nowait(message("early"))

    queue.attach(ws.send)
    queue.put_nowait(message("late"))

    assert ws.texts() == ["4early", "4late"]
    assert queue.qsize() == 0
    await asyncio.wait_for(queue.join(), 1)


async def test_a_send_that_has_to_wait_keeps_the_order_of_everything_behind_it(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue(ROOMY)
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
    queue = OutgoingQueue(ROOMY)
    queue.attach(ws.send)

    queue.put_nowait(message("bye"))
    queue.put_nowait(eio_packet.Packet(eio_packet.CLOSE))
    queue.put_nowait(message("too late"))
    queue.put_nowait(None)

    assert ws.messages[-1] == CLOSE_WEBSOCKET
    assert ws.texts() == ["4bye", "1", None]


async def test_after_a_failed_send_nothing_more_is_written_or_kept(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue(ROOMY)
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
    pkt.asgi_message = {"type": "websocket.send", "text": "4x"}
    queue = OutgoingQueue(ROOMY)
    queue.attach(ws.send)

    queue.put_nowait(pkt)

    assert ws.messages[0] is pkt.asgi_message


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


class Overflows:
    """Records each `on_overflow` call of a queue."""

    def __init__(self, queue: OutgoingQueue) -> None:
        self.count = 0
        queue.on_overflow = self.record

    def record(self) -> None:
        self.count += 1


async def test_a_websocket_that_falls_too_many_packets_behind_is_cut_off_once(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue(BacklogLimit(max_bytes=1 << 20, max_packets=3))
    overflows = Overflows(queue)
    queue.attach(ws.send)
    ws.writable.clear()

    for text in "abcd":  # "a" is being written; "b", "c", "d" wait
        queue.put_nowait(message(text))
    assert (queue.qsize(), overflows.count) == (3, 0)
    queue.put_nowait(message("e"))
    queue.put_nowait(message("f"))

    assert overflows.count == 1
    assert queue.waiting_bytes == 0
    assert ws.transport.aborted, "the connection is dropped at once"
    ws.writable.set()
    await asyncio.wait_for(queue.join(), 1)
    assert ws.texts() == ["4a", None], (
        "what waited is dropped; the websocket closes behind the packet in flight"
    )
    assert ws.messages[-1] == CLOSE_WEBSOCKET


async def test_the_bound_counts_bytes_as_sent_acks_included(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue(BacklogLimit(max_bytes=10, max_packets=100))
    overflows = Overflows(queue)
    queue.attach(ws.send)
    ws.writable.clear()
    queue.put_nowait(message("in flight, not counted"))

    queue.put_nowait(EncodedMessage('31[{"ok":true}]'[:4]))  # an ack: "431[{" is 5 bytes
    queue.put_nowait(message("한"))  # "4한": 1 + 3 bytes
    assert (queue.waiting_bytes, overflows.count) == (9, 0)
    queue.put_nowait(message("xx"))  # 3 more bytes: 12 > 10

    assert (overflows.count, queue.waiting_bytes) == (1, 0)
    ws.writable.set()
    await asyncio.wait_for(queue.join(), 1)
    assert ws.texts() == ["4in flight, not counted", None]


async def test_a_large_packet_written_at_once_does_not_count(ws: FakeWebSocket) -> None:
    queue = OutgoingQueue(BacklogLimit(max_bytes=10, max_packets=1))
    overflows = Overflows(queue)
    queue.attach(ws.send)

    queue.put_nowait(message("x" * 1000))

    assert ws.texts() == ["4" + "x" * 1000]
    assert (queue.waiting_bytes, overflows.count) == (0, 0)


async def test_a_long_polling_client_that_never_polls_is_cut_off_and_one_that_polls_is_not() -> None:
    polled = OutgoingQueue(BacklogLimit(max_bytes=1 << 20, max_packets=2))
    never = OutgoingQueue(BacklogLimit(max_bytes=1 << 20, max_packets=2))
    cut = Overflows(never)
    kept = Overflows(polled)

    for text in "abcde":
        polled.put_nowait(message(text))
        assert polled.get_nowait().data == text
        polled.task_done()
        never.put_nowait(message(text))

    assert (kept.count, polled.waiting_bytes) == (0, 0)
    assert cut.count == 1
    assert never.qsize() == 0
    never.put_nowait(message("after"))
    assert never.qsize() == 0, "a cut-off queue accepts nothing more"


async def test_a_released_queue_holds_no_packet_and_no_connection() -> None:
    queue = OutgoingQueue(ROOMY)
    ws = FakeWebSocket()
    queue.attach(ws.send)
    gone = weakref.ref(ws)
    del ws

    queue.release()
    queue.put_nowait(message("late"))
    gc.collect()

    assert gone() is None, "the connection's send is not held"
    assert queue.qsize() == 0


async def test_releasing_a_long_polling_queue_ends_the_poll_that_waits() -> None:
    queue = OutgoingQueue(ROOMY)
    queue.put_nowait(message("unread"))
    assert queue.get_nowait().data == "unread"
    queue.task_done()
    poll = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert queue.reading

    queue.release()

    ended = await asyncio.wait_for(poll, 1)
    assert ended.packet_type == eio_packet.NOOP, "the poll is answered `6`, as a close is in Engine.IO"
    assert not queue.reading


async def test_a_poll_that_starts_after_the_release_ends_at_once() -> None:
    """A GET that passed the session check just before the session closed."""
    queue = OutgoingQueue(ROOMY)
    queue.release()

    ended = await asyncio.wait_for(queue.get(), 1)
    queue.task_done()

    assert ended.packet_type == eio_packet.NOOP
    assert not queue.reading


def parsed(frame: bytes) -> Frame:
    """A frame as the websockets library reads it (a client reads unmasked frames)."""
    reader = StreamReader()
    reader.feed_data(frame)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("an incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_a_server_frame_is_the_frame_websockets_writes(size: int) -> None:
    text = ("한" + "x" * size)[:size] if size else ""

    frame = server_frame(text)

    assert frame == Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert bytes(parsed(frame).data).decode() == text
    binary = server_frame(b"\x00" * size)
    assert parsed(binary).opcode is Opcode.BINARY
    assert len(parsed(binary).data) == size


async def test_a_shared_packet_is_framed_once_and_its_bytes_go_to_every_recipient() -> None:
    sockets = [FrameTakingWebSocket() for _ in range(3)]
    queues = [OutgoingQueue(ROOMY) for _ in sockets]
    for queue, ws in zip(queues, sockets, strict=True):
        queue.attach(ws.send, ws.write_frame)
    pkt = EncodedMessage('2["news",{"s":1}]')

    for queue in queues:
        queue.put_nowait(pkt)

    assert all(ws.frames[0] is sockets[0].frames[0] for ws in sockets)
    assert parsed(sockets[0].frames[0]).data == b'42["news",{"s":1}]'


async def test_a_frame_is_not_written_past_what_waits_and_the_order_holds() -> None:
    ws = FrameTakingWebSocket()
    queue = OutgoingQueue(ROOMY)
    queue.attach(ws.send, ws.write_frame)
    queue.put_nowait(message("a"))
    ws.writable.clear()

    queue.put_nowait(message("b"))  # refused as a frame: sent through `send`, which waits
    queue.put_nowait(message("c"))
    ws.writable.set()
    queue.put_nowait(message("d"))  # writable again, but "b" and "c" still wait
    await asyncio.wait_for(queue.join(), 1)
    queue.put_nowait(message("e"))

    assert ws.texts() == ["4a", "4b", "4c", "4d", "4e"]
    assert len(ws.frames) == 2, "a and e went out as frames, the rest through send"


async def test_a_compressed_websocket_gets_its_packets_through_send() -> None:
    ws = FrameTakingWebSocket()
    ws.compressed = True
    queue = OutgoingQueue(ROOMY)
    queue.attach(ws.send, ws.write_frame)

    queue.put_nowait(message("a"))
    queue.put_nowait(eio_packet.Packet(eio_packet.CLOSE))

    assert ws.frames == []
    assert ws.texts() == ["4a", "1", None]


async def test_a_released_queue_holds_no_frame_writer() -> None:
    queue = OutgoingQueue(ROOMY)
    ws = FrameTakingWebSocket()
    queue.attach(ws.send, ws.write_frame)
    gone = weakref.ref(ws)
    del ws

    queue.release()
    gc.collect()

    assert gone() is None


async def test_a_message_for_one_socket_is_framed_at_once_or_waits_in_order_behind_a_send() -> None:
    ws = FrameTakingWebSocket()
    queue = OutgoingQueue(ROOMY)
    queue.attach(ws.send, ws.write_frame)
    queue.put_message("31[{}]")
    ws.writable.clear()

    queue.put_message("32[{}]")  # refused as a frame: through `send`, which waits
    ws.writable.set()
    queue.put_message("33[{}]")  # writable again, but the second still waits
    await asyncio.wait_for(queue.join(), 1)

    assert ws.texts() == ["431[{}]", "432[{}]", "433[{}]"]
    assert len(ws.frames) == 1


async def test_a_message_for_a_polling_socket_or_a_closed_websocket_is_a_packet_as_before() -> None:
    polling = OutgoingQueue(ROOMY)
    polling.put_message("31[{}]")
    ws = FrameTakingWebSocket()
    closed = OutgoingQueue(ROOMY)
    closed.attach(ws.send, ws.write_frame)
    closed.close_websocket()

    closed.put_message("31[{}]")

    assert polling.get_nowait().encode() == "431[{}]"
    assert ws.frames == []
    assert ws.messages == [CLOSE_WEBSOCKET]


async def test_a_delivery_writes_the_shared_frame_or_queues_the_packet_where_it_cannot() -> None:
    writing, waiting = FrameTakingWebSocket(), FrameTakingWebSocket()
    queues = [OutgoingQueue(ROOMY), OutgoingQueue(ROOMY), OutgoingQueue(ROOMY)]
    queues[0].attach(writing.send, writing.write_frame)
    queues[1].attach(waiting.send, waiting.write_frame)
    waiting.writable.clear()
    pkt = EncodedMessage('2["news",{"s":1}]')

    for queue in queues:
        queue.deliver(pkt, pkt.frame)
    waiting.writable.set()
    await asyncio.wait_for(queues[1].join(), 1)

    assert writing.frames == [pkt.frame]
    assert waiting.frames == []
    assert waiting.texts() == ['42["news",{"s":1}]']
    assert queues[2].get_nowait() is pkt, "a socket still polling gets the packet"
