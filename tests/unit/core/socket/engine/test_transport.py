"""Parley's Engine.IO socket on its own (python-engineio's real classes, no server): its ping timer,
its bounded close, its report of packet types a client may not send, and its cut-off."""

from __future__ import annotations

import asyncio
import time
import weakref

import pytest
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from app.core.socket.engine.outgoing import BacklogLimit
from app.core.socket.engine.transport import ParleyEngine, ParleySocket

DEADLINE = 0.2


class Faults:
    """Records what the transport reports."""

    def __init__(self) -> None:
        self.faults: list[tuple[str | None, str]] = []
        self.dropped: list[str] = []

    async def malformed(self, eio_sid: str, why: str) -> None:
        self.dropped.append(why)

    def fault(self, eio_sid: str | None, kind: str, why: str) -> None:
        self.faults.append((eio_sid, kind))


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def engine(faults: Faults) -> ParleyEngine:
    server = ParleyEngine(async_mode="asgi", ping_interval=60, ping_timeout=20)
    server.configure(BacklogLimit(max_bytes=1 << 20, max_packets=3), DEADLINE, faults)
    return server


async def test_a_closed_socket_is_freed_at_once_though_its_next_ping_is_a_minute_away(
    engine: ParleyEngine,
) -> None:
    socket = ParleySocket(engine, "s1")
    socket.schedule_ping()
    gone = weakref.ref(socket)

    await socket.close(wait=False, abort=True)
    del socket

    assert gone() is None, "nothing (no ping task, no cycle through its queue) holds a closed socket"


async def test_a_ping_goes_out_each_interval_once_the_last_one_was_answered() -> None:
    engine = ParleyEngine(async_mode="asgi", ping_interval=0.05, ping_timeout=1)
    engine.configure(BacklogLimit(max_bytes=1 << 20, max_packets=100), DEADLINE, Faults())
    socket = ParleySocket(engine, "s1")
    socket.schedule_ping()

    first = await asyncio.wait_for(socket.queue.get(), 1)
    socket.schedule_ping()  # not answered yet: no second timer
    assert first.packet_type == eio_packet.PING
    await socket.receive(eio_packet.Packet(eio_packet.PONG))
    second = await asyncio.wait_for(socket.queue.get(), 1)

    assert second.packet_type == eio_packet.PING
    assert socket.queue.empty()
    await socket.close(wait=False, abort=True)


async def test_closing_waits_at_most_the_deadline_for_a_client_that_never_polls(engine: ParleyEngine) -> None:
    socket = ParleySocket(engine, "s1")
    socket.connected = True

    started = time.monotonic()
    await socket.close(wait=True)

    assert time.monotonic() - started < DEADLINE + 0.5
    assert socket.closed


async def test_a_waiting_poll_gets_the_close_packet_and_closing_does_not_wait_longer(
    engine: ParleyEngine,
) -> None:
    socket = ParleySocket(engine, "s1")
    socket.connected = True
    poll = asyncio.ensure_future(socket.poll())
    await asyncio.sleep(0)

    started = time.monotonic()
    await socket.close(wait=True)

    assert [pkt.packet_type for pkt in await asyncio.wait_for(poll, 1)] == [eio_packet.CLOSE]
    assert time.monotonic() - started < DEADLINE


@pytest.mark.parametrize("kind", [eio_packet.OPEN, eio_packet.PING, eio_packet.NOOP, 7, 9])
async def test_a_packet_type_a_client_may_not_send_is_reported_not_failed_on(
    engine: ParleyEngine, kind: int
) -> None:
    socket = ParleySocket(engine, "s1")
    pkt = eio_packet.Packet(eio_packet.NOOP)
    pkt.packet_type = kind
    with pytest.raises(eio_exceptions.UnknownPacketError):
        await socket.receive(pkt)
    await socket.close(wait=False, abort=True)


async def test_a_socket_past_its_backlog_is_reported_and_closed(engine: ParleyEngine, faults: Faults) -> None:
    socket = ParleySocket(engine, "s1")
    socket.connected = True

    for seq in range(4):
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, f"m{seq}"))
    await asyncio.sleep(0)

    assert faults.faults == [("s1", "backlog")]
    assert socket.closed
    assert socket.queue.qsize() == 0
