"""Redis goes away and comes back (SPEC §9): new connections are answered UNAVAILABLE, sockets already
connected keep working on their node, and fan-out between nodes resumes by itself.

Two nodes reach Redis through a TCP proxy owned by the test (`tests/support/proxy.py`), so the
outage is real for them and invisible to everyone else using the same Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import socketio

from tests.support.backends import REDIS_HOST, REDIS_PORT, Backend
from tests.support.clients import RecordingClient, connect_ready, external_token
from tests.support.proxy import TcpProxy
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

GAME = "tests.support.game:create_asgi"


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    running = TcpProxy(REDIS_HOST, REDIS_PORT).start()
    yield running
    running.close()


async def shout_until_heard(speaker: RecordingClient, listener: RecordingClient, text: str) -> None:
    """Shout to `broadcast:all` until the listener on the other node hears it (Redis may still be
    reconnecting); each round waits on the listener's event, not on the clock."""
    deadline = asyncio.get_running_loop().time() + 15
    heard = len(listener.events["game:news"])
    while True:
        assert (await speaker.call("game:shout", {"room": "broadcast:all", "text": text}))["ok"]
        with contextlib.suppress(TimeoutError):
            await listener.wait_for("game:news", timeout=0.5, index=heard)
            if listener.events["game:news"][heard]["text"] == text:
                return
        assert asyncio.get_running_loop().time() < deadline, "fan-out did not resume"
        heard = len(listener.events["game:news"])


async def test_a_redis_outage_degrades_to_one_node_and_heals_by_itself(
    backend: Backend, proxy: TcpProxy, start_server: Callable[..., ServerProcess], clients: Any
) -> None:
    via_proxy = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
    a = start_server(backend, factory=GAME, **via_proxy)
    b = start_server(backend, factory=GAME, **via_proxy)
    on_a, on_b = (
        await connect_ready(clients, a, external_token(a)),
        await connect_ready(clients, b, external_token(b)),
    )
    await shout_until_heard(on_a, on_b, "before")

    proxy.cut()
    refused = clients()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(a.url, external_token(a))
    assert refused.connect_error["data"] == {
        "code": "UNAVAILABLE",
        "message": "Service temporarily unavailable",
    }
    own_room = on_a.events["session:ready"][0]["rooms"][0]
    heard = len(on_a.events["game:news"])
    assert (await on_a.call("game:shout", {"room": own_room, "text": "local"}))["ok"]
    assert (await on_a.wait_for("game:news", index=heard))["text"] == "local", (
        "this node's sockets keep working"
    )
    assert (await on_a.call("room:join", {"room": "game:outage-open"}))["ok"]

    proxy.restore()
    await shout_until_heard(on_a, on_b, "after")
    await connect_ready(clients, a, external_token(a))
    outage_lines = [line for line in a.log().splitlines() if "Redis fan-out" in line]
    assert any("unavailable" in line for line in outage_lines)
    assert "Traceback" not in b.log()
