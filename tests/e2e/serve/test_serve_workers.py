"""`parley serve --workers 4` with default clients: every request of a session reaches its worker.

One server per module, on PostgreSQL + Redis (several workers need Redis; SQLite runs are skipped).
Clients use default options: long-polling first, then the upgrade to websocket, which only works
when the polling requests, the upgrade and the websocket all reach the worker holding the session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.socket.sids import worker_of
from tests.support.backends import Backend
from tests.support.crowd import Member, PyMember, chat_crowd, external_members, in_groups
from tests.support.js_clients import require_js_clients
from tests.support.server import ROOT, ParleyServe

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

WORKERS = 4
JS_CLIENTS = 200
PY_CLIENTS = 50
GROUP = 10
TIMEOUT = 60.0
METRICS_TOKEN = "scrape-token-0123456789"
ENV = {
    "RATE_LIMIT_CHAT": "1000/1",
    "RATE_LIMIT_DEFAULT": "1000/1",
    "METRICS_TOKEN": METRICS_TOKEN,
    "DATABASE_MAX_CONNECTIONS": "8",
}
POLLING = "/socket.io/?EIO=4&transport=polling"
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
SERIES = re.compile(r"\bparley_[a-z_]+\b")
SPEC_SERIES = {
    "parley_sockets_connected",
    "parley_socket_events_in_total",
    "parley_socket_events_out_total",
    "parley_socket_handler_seconds_bucket",
    "parley_errors_total",
    "parley_messages_stored_total",
    "parley_sync_recoveries_total",
}


@pytest.fixture(scope="module", params=["postgres"])
def backend(request: pytest.FixtureRequest, backend_factory: Callable[[str], Backend]) -> Backend:
    """Workers share state through Redis: these tests run on PostgreSQL + Redis alone."""
    return backend_factory(request.param)


@pytest.fixture(scope="module")
def served(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParleyServe]:
    server = ParleyServe(
        backend.env(**ENV), tmp_path_factory.mktemp("workers") / "serve.log", "--workers", "4"
    )
    try:
        yield server.start(timeout=90)
    finally:
        server.stop()


@pytest.fixture
async def http(served: ParleyServe) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        yield client


def owner(sid: str) -> int:
    index = worker_of(sid, None)
    assert index is not None, sid
    return index


async def test_default_clients_connect_upgrade_and_chat_across_workers(
    served: ParleyServe, http: httpx.AsyncClient
) -> None:
    require_js_clients()
    report = await chat_crowd(
        served.url, http, served.env["JWT_SECRET"], JS_CLIENTS, PY_CLIENTS, GROUP, TIMEOUT
    )
    logger.info(report.summary(f"--workers {WORKERS}"))
    report.assert_all_connected_upgraded_and_chatted()
    spread = Counter(owner(sid) for sid in report.sids)
    assert set(spread) == set(range(WORKERS)), spread


async def test_a_request_naming_no_live_session_gets_a_prompt_400(http: httpx.AsyncClient) -> None:
    handshake = await http.get(POLLING)
    live = json.loads(handshake.text[1:])["sid"]
    expired = f"{owner(live)}.AAAAAAAAAAAAAAAAAAAA"
    for sid in ("9.AAAAAAAAAAAAAAAAAAAA", "no-owner-at-all", expired):
        for method in ("GET", "POST"):
            answer = await http.request(method, f"{POLLING}&sid={sid}", content="40", timeout=2)
            assert answer.status_code == 400, (sid, method, answer.text)
            assert "Invalid session" in answer.text
    upgrade = await http.get(
        "/socket.io/?EIO=4&transport=websocket&sid=9.AAAAAAAAAAAAAAAAAAAA",
        headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
        timeout=2,
    )  # fmt: skip
    assert upgrade.status_code == 400
    assert "Invalid session" in upgrade.text


async def test_keep_alive_requests_reach_the_worker_of_their_session(
    served: ParleyServe, http: httpx.AsyncClient
) -> None:
    """One connection carries requests of sessions held by every worker, as HTTP clients' pools do."""
    sids = []
    for _ in range(WORKERS):
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as fresh:
            sids.append(json.loads((await fresh.get(POLLING)).text[1:])["sid"])
    assert sorted(owner(sid) for sid in sids) == list(range(WORKERS))
    members = await external_members(http, served.env["JWT_SECRET"], WORKERS)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=served.url, timeout=10, limits=limits) as one_connection:
        for sid, member in zip(sids, members, strict=True):
            joined = await one_connection.post(
                f"{POLLING}&sid={sid}", content="40" + json.dumps({"token": member.token})
            )
            assert joined.status_code == 200, joined.text
            received = await poll_until(one_connection, sid, "session:ready")
            assert received.startswith("40{"), received
        for sid in sids:  # Engine.IO CLOSE: no session outlives the test
            assert (await one_connection.post(f"{POLLING}&sid={sid}", content="1")).status_code == 200


async def poll_until(client: httpx.AsyncClient, sid: str, wanted: str, polls: int = 5) -> str:
    """What session `sid` receives over its long-polling GETs until `wanted` is among it (a GET
    answers as soon as something is queued, so a reply's packets may come over more than one)."""
    received = ""
    for _ in range(polls):
        polled = await client.get(f"{POLLING}&sid={sid}")
        assert polled.status_code == 200, polled.text
        received += polled.text
        if wanted in received:
            return received
    raise AssertionError(f"{wanted} not received in {polls} polls: {received}")


def metric(text: str, name: str) -> float:
    """The value of sample `name`, summed over its labels."""
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
    assert values, f"{name} not in /metrics"
    return float(sum(values))


async def scrape_all_workers(served: ParleyServe) -> list[str]:
    """`/metrics` once from each worker (new connections are dealt to the workers in turn)."""
    pages = []
    for _ in range(WORKERS):
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as fresh:
            response = await fresh.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text
        pages.append(response.text)
    return pages


def worker_pid(served: ParleyServe, index: int) -> int:
    assert served.process is not None
    children = Path(f"/proc/{served.process.pid}/task/{served.process.pid}/children").read_text().split()
    for pid in children:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if (
            b"app.serve.worker" in arguments
            and arguments[arguments.index(b"app.serve.worker") + 1] == str(index).encode()
        ):
            return int(pid)
    raise AssertionError(f"no worker {index} among {children}")


async def test_one_scrape_covers_every_worker_and_a_dead_worker_is_dropped_and_replaced(
    served: ParleyServe, http: httpx.AsyncClient
) -> None:
    before = {metric(page, "parley_sockets_connected") for page in await scrape_all_workers(served)}
    assert len(before) == 1, f"scrapes of different workers disagree: {before}"
    base = before.pop()
    members = [
        PyMember(Member(m.user_id, m.token))
        for m in await external_members(http, served.env["JWT_SECRET"], 8)
    ]
    await asyncio.gather(*(p.connect(served.url, TIMEOUT) for p in members))
    try:
        for p in members:
            assert (await p.sio.call("room:join", {"room": "broadcast:all"}, timeout=TIMEOUT))["ok"]
        on = Counter(owner(p.engine_sid) for p in members)
        assert len(on) == WORKERS
        pages = await scrape_all_workers(served)
        assert [metric(page, "parley_sockets_connected") for page in pages] == [base + 8] * WORKERS
        events_before = metric(pages[0], "parley_socket_events_in_total")

        victim = owner(members[0].engine_sid)
        os.kill(worker_pid(served, victim), signal.SIGKILL)
        expected = base + 8 - on[victim]
        await until(lambda: scrapes_say(served, expected), "the dead worker's sockets to leave the gauge")
        await until(lambda: a_session_on(served, victim), f"worker {victim} to serve again")
        assert "restarting it" in served.log()
        after = await scrape_all_workers(served)
        assert metric(after[0], "parley_socket_events_in_total") >= events_before, "counters outlive a worker"
    finally:
        await asyncio.gather(*(p.sio.shutdown() for p in members))


async def scrapes_say(served: ParleyServe, connected: float) -> bool:
    """Whether every worker's scrape shows `connected` sockets; not yet while a connection is still
    dealt to the killed worker (between its end and the supervisor seeing it, it is closed unanswered)."""
    try:
        pages = await scrape_all_workers(served)
    except httpx.TransportError:
        return False
    return all(metric(page, "parley_sockets_connected") == connected for page in pages)


async def a_session_on(served: ParleyServe, index: int) -> bool:
    for _ in range(WORKERS):
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as fresh:
            handshake = await fresh.get(POLLING)
        if handshake.status_code == 200 and owner(json.loads(handshake.text[1:])["sid"]) == index:
            return True
    return False


async def until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` (a coroutine function) until it holds; fail naming `what` after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():  # type: ignore[misc]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def dashboard_series() -> set[str]:
    """Every Parley series a query of the dashboard (panels and variables) names."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return {name for query in queries for name in SERIES.findall(query)}


async def test_every_series_the_dashboard_queries_is_in_a_scrape_of_any_worker(
    served: ParleyServe, http: httpx.AsyncClient
) -> None:
    sender, reader = (
        PyMember(m)
        for m in await in_groups(http, await external_members(http, served.env["JWT_SECRET"], 2), 2)
    )
    await asyncio.gather(sender.connect(served.url, TIMEOUT), reader.connect(served.url, TIMEOUT))
    try:
        assert (await sender.send(TIMEOUT))["ok"]
        await asyncio.wait_for(reader.heard_all.wait(), TIMEOUT)
        cursor = {"conversation_id": reader.member.conversation_id, "after_seq": 0}
        assert (await reader.sio.call("chat:sync", {"conversations": [cursor]}, timeout=TIMEOUT))["ok"]
        refused = await sender.sio.call("chat:send", {"conversation_id": "not-a-uuid"}, timeout=TIMEOUT)
        assert refused["error"]["code"] == "VALIDATION_ERROR"
    finally:
        await asyncio.gather(sender.sio.shutdown(), reader.sio.shutdown())
    queried = dashboard_series()
    assert queried >= SPEC_SERIES, f"the dashboard leaves out {SPEC_SERIES - queried}"
    for page in await scrape_all_workers(served):
        exposed = {
            sample.name for family in text_string_to_metric_families(page) for sample in family.samples
        }
        assert queried <= exposed, f"queried but not exposed: {queried - exposed}"
