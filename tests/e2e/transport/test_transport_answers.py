"""Every request on either transport gets a prompt, honest answer (SPEC §5 "Limits").

Before and after the namespace connect, an oversized (413), malformed or out-of-order request is
answered 4xx within a second, never 500 and never left waiting; input costs no traceback, each
offending connection gets one log line (and one more when it is closed), faults are counted in
`/metrics`, repeated garbage closes the transport on long-polling as on websocket, and the server
keeps serving. The access log shows no token and no long-polling session id.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets

from app.core.socket.engine.transport import transport_label
from tests.support.backends import Backend
from tests.support.clients import external_token
from tests.support.raw import raw
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

MAX_PAYLOAD = 4096
TRANSPORT_LIMIT = MAX_PAYLOAD * 2 + 1024
"""What the transport takes in one request or frame (an event past MAX_PAYLOAD is answered
PAYLOAD_TOO_LARGE by Socket.IO; past this, the request itself is refused)."""
PROMPT = 1.0
MALFORMED_LIMIT = 5


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = backend.env(SOCKET_MAX_PAYLOAD_BYTES=MAX_PAYLOAD, SOCKET_CONNECT_TIMEOUT=5, LOG_LEVEL="INFO")
    node = ServerProcess(env, tmp_path_factory.mktemp("answers") / "server.log", access_log=True)
    yield node.start()
    node.stop()


class Polling:
    """One long-polling session, by hand."""

    def __init__(self, http: httpx.AsyncClient, sid: str) -> None:
        self.http = http
        self.sid = sid
        self.params = {"EIO": "4", "transport": "polling", "sid": sid}

    async def post(self, content: Any, **kwargs: Any) -> httpx.Response:
        return await self.http.post("/socket.io/", params=self.params, content=content, **kwargs)

    async def get(self) -> httpx.Response:
        return await self.http.get("/socket.io/", params=self.params)

    async def closed(self) -> bool:
        """The session is over: a poll gets its CLOSE packet, or the NOOP that ends a poll of a
        session closing under it, or is refused once it is gone. Packets still queued before the
        end (a ping) are read past."""
        for _ in range(5):
            answer = await self.get()
            if answer.status_code == 400:
                return True
            packets = answer.text.split("\x1e")
            if "1" in packets or "6" in packets:
                return True
        return False

    async def until_ready(self) -> None:
        """Poll until `session:ready` came (the CONNECT answer comes first)."""
        seen = ""
        while '"session:ready"' not in seen:
            seen += (await self.get()).text


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        yield client


async def open_polling(http: httpx.AsyncClient, token: str | None) -> Polling:
    """A session; with a token, joined to `/` and past `session:ready`."""
    opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    session = Polling(http, json.loads(opened.text[1:])["sid"])
    if token is not None:
        assert (await session.post("40" + json.dumps({"token": token}))).status_code == 200
        await session.until_ready()
    return session


async def chunks(total: int) -> AsyncIterator[bytes]:
    """A body sent chunked, without a Content-Length."""
    yield b"4"
    for _ in range(total // 1024):
        yield b"x" * 1024


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_the_handshake_announces_the_transport_s_terms(
    server: ServerProcess, http: httpx.AsyncClient, transport: str
) -> None:
    if transport == "polling":
        opened = (await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})).text
    else:
        async with websockets.connect(
            server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        ) as ws:
            opened = str(await ws.recv())
    assert opened.startswith("0{")
    terms = json.loads(opened[1:])
    assert terms["sid"]
    assert terms["upgrades"] == (["websocket"] if transport == "polling" else [])
    assert (terms["pingInterval"], terms["pingTimeout"]) == (25000, 20000)
    assert terms["maxPayload"] == TRANSPORT_LIMIT


BAD_POSTS: dict[str, tuple[Any, int]] = {
    "oversized": ("4" + "x" * TRANSPORT_LIMIT, 413),
    "oversized, chunked": (None, 413),
    "not UTF-8": (b"4\xff\xfe", 400),
    "an unknown packet type": ("9hello", 400),
    "a packet type only the server sends": ("2probe", 400),
    "an empty packet": ("4a\x1e\x1e4b", 400),
    "too many packets": ("\x1e".join(["3"] * 17), 400),
}


@pytest.mark.parametrize("joined", [False, True], ids=["before connect", "after connect"])
@pytest.mark.parametrize("case", list(BAD_POSTS))
async def test_a_bad_long_polling_post_is_answered_at_once(
    server: ServerProcess, http: httpx.AsyncClient, case: str, joined: bool
) -> None:
    session = await open_polling(http, external_token(server) if joined else None)
    body, status = BAD_POSTS[case]
    started = time.monotonic()
    answer = await session.post(body if body is not None else chunks(TRANSPORT_LIMIT + 1024))
    assert answer.status_code == status, answer.text
    assert time.monotonic() - started < PROMPT
    if status == 413:
        assert await session.closed()
    await still_serving(server, http)


@pytest.mark.parametrize(
    ("params", "why"),
    [({"sid": "no-such-session"}, "Invalid session"), ({"j": "0"}, "JSONP is not supported")],
)
async def test_a_post_to_no_session_is_answered_400(
    server: ServerProcess, http: httpx.AsyncClient, params: dict[str, str], why: str
) -> None:
    session = await open_polling(http, None)
    started = time.monotonic()
    answer = await http.post("/socket.io/", params={**session.params, **params}, content="3")
    assert (answer.status_code, why in answer.text) == (400, True), answer.text
    assert time.monotonic() - started < PROMPT


async def test_a_post_after_the_session_closed_is_answered_400(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    session = await open_polling(http, external_token(server))
    assert (await session.post("1")).status_code == 200
    assert await session.closed()
    started = time.monotonic()
    assert (await session.post("3")).status_code == 400
    assert time.monotonic() - started < PROMPT


async def test_a_second_poll_while_one_waits_is_refused_and_ends_the_session(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    session = await open_polling(http, external_token(server))
    started = time.monotonic()
    # Whichever GET reaches the server second is the one refused; the one waiting there gets CLOSE.
    polls = await asyncio.wait_for(asyncio.gather(session.get(), session.get()), PROMPT)
    assert time.monotonic() - started < PROMPT
    refused = [poll for poll in polls if poll.status_code == 400]
    waited = [poll for poll in polls if poll.status_code == 200]
    assert (len(refused), len(waited)) == (1, 1), [poll.status_code for poll in polls]
    assert waited[0].text.endswith("1"), "the waiting poll gets CLOSE"
    assert (await session.get()).status_code == 400


async def test_repeated_garbage_closes_a_long_polling_session_with_two_log_lines(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    session = await open_polling(http, external_token(server))
    answers = [(await session.post(b"\xff")).status_code for _ in range(MALFORMED_LIMIT)]
    assert answers == [400] * MALFORMED_LIMIT
    assert await session.closed(), "closed after the limit"
    label = transport_label(session.sid)
    lines = [line for line in server.log().splitlines() if label in line]
    assert session.sid not in server.log(), "a long-polling session id is never logged"
    assert len(lines) == 2, lines
    assert "dropped a packet" in lines[0]
    assert "closing" in lines[1]


@pytest.mark.parametrize("joined", [False, True], ids=["before connect", "after connect"])
async def test_an_engine_io_packet_a_client_may_not_send_is_dropped_without_a_traceback(
    server: ServerProcess, joined: bool
) -> None:
    async with raw(server, external_token(server) if joined else None) as sock:
        for _ in range(MALFORMED_LIMIT):
            await sock.send("9x")
        await sock.closed()
    assert "Traceback" not in server.log()


async def test_a_frame_past_the_transport_limit_closes_the_websocket(server: ServerProcess) -> None:
    async with raw(server, external_token(server)) as sock:
        await sock.send("4" + "x" * TRANSPORT_LIMIT)
        await sock.closed()
    label = transport_label(sock.eio_sid)
    assert any(label in line and "a frame of" in line for line in server.log().splitlines())


async def test_a_second_upgrade_of_a_session_is_refused_and_the_first_completes(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    session = await open_polling(http, external_token(server))
    url = server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={session.sid}"
    async with websockets.connect(url) as first:
        await first.send("2probe")
        assert await first.recv() == "3probe"
        async with websockets.connect(url) as second:
            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(second.recv(), PROMPT)
            assert time.monotonic() - started < PROMPT
        await first.send("5")
        await first.send("421" + json.dumps(["room:join", {"room": "broadcast:upgraded"}]))
        frame = ""
        while not frame.startswith("431"):
            frame = str(await asyncio.wait_for(first.recv(), PROMPT))
        assert json.loads(frame[3:])[0]["ok"] is True


async def test_faults_are_counted_and_cost_no_traceback_nor_a_500(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    session = await open_polling(http, None)
    await session.post(b"\xff")
    await session.post("4" + "x" * TRANSPORT_LIMIT)
    metrics = (await http.get("/metrics")).text
    counted = {
        line.split('"')[1]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("parley_transport_faults_total{")
    }
    assert counted.get("malformed", 0) >= 1
    assert counted.get("oversized", 0) >= 1
    log = server.log()
    assert "Traceback" not in log
    assert '" 500' not in log


async def test_the_access_log_shows_no_token_and_no_polling_session_id(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    token = external_token(server)
    opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling", "token": token})
    session = Polling(http, json.loads(opened.text[1:])["sid"])
    assert (await session.post("40" + json.dumps({"token": token}))).status_code == 200
    await session.until_ready()
    log = server.log()
    assert "/socket.io/?EIO=4&transport=polling&sid=***" in log, "the requests are logged"
    assert session.sid not in log
    assert token not in log


async def still_serving(server: ServerProcess, http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).status_code == 200
    async with raw(server, external_token(server)) as sock:
        assert (await sock.call("room:join", {"room": "broadcast:still-here"}))["ok"] is True
