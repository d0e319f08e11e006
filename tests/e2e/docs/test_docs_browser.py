"""`/ws-docs` and `/schema` in a real browser: headless Debian Chromium, driven over the DevTools protocol.

A real server process per backend. The console: a token pasted (or got from the login helper), the
socket connected with the page's own Socket.IO client, `room:join` emitted, the ack read from the
page's log. Both pages load with every host but the server's loopback address unresolvable, and
must load everything, break no Content-Security-Policy rule and ask nothing of another host; the
search and the phone layout work; a description's `<script>` stays text. Screenshots of a desktop and
a phone go to the temporary folder. Waiting is done inside the page (a MutationObserver resolves a
promise), never by sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.backends import IN_CI, Backend
from tests.support.clients import PASSWORD, register_and_login
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
)
WAIT_MS = 15_000
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""Every host name but the server's loopback address fails to resolve: the machine is offline."""
SCREENSHOTS = Path(tempfile.gettempdir())
SETTLED = """new Promise((resolve) => {{
  const el = document.querySelector("{selector}");
  if (getComputedStyle(el).transform === "none") resolve();
  else el.addEventListener("transitionend", () => resolve(), {{ once: true }});
}})"""
"""Resolves once the element's slide has ended (a transition fires no DOM mutation to wait on)."""
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")

WAIT_FOR = """
(selector, test, ms) => new Promise((resolve, reject) => {
  const match = () => [...document.querySelectorAll(selector)].find((el) => test(el));
  const done = (el) => {
    observer.disconnect();
    clearTimeout(timer);
    resolve({ text: el.textContent, data: { ...el.dataset } });
  };
  const observer = new MutationObserver(() => { const el = match(); if (el) done(el); });
  const timer = setTimeout(() => {
    observer.disconnect();
    reject(new Error("timed out on " + selector));
  }, ms);
  const found = match();
  if (found) done(found);
  else observer.observe(document.documentElement,
    { subtree: true, childList: true, attributes: true, characterData: true });
})
"""


class DevTools:
    """A minimal Chrome DevTools protocol client: commands by id, events by name."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self.seen: dict[str, list[dict[str, Any]]] = {}
        """Every event of the methods in it, as they come (`record` adds a method)."""
        self.reader = asyncio.create_task(self._read())

    def record(self, *methods: str) -> None:
        for method in methods:
            self.seen.setdefault(method, [])

    async def _read(self) -> None:
        async for raw in self.connection:
            message = json.loads(raw)
            if "id" in message and message["id"] in self.pending:
                self.pending.pop(message["id"]).set_result(message)
            if message.get("method") in self.seen:
                self.seen[message["method"]].append(message.get("params", {}))
            for waiter in self.waiters.pop(message.get("method", ""), []):
                if not waiter.done():
                    waiter.set_result(message.get("params", {}))

    def expect(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(method, []).append(future)
        return future

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        command_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[command_id] = future
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.connection.send(json.dumps(message))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})  # type: ignore[no-any-return]


class Page:
    def __init__(self, devtools: DevTools, session: str) -> None:
        self.devtools = devtools
        self.session = session

    async def evaluate(self, expression: str) -> Any:
        result = await self.devtools.send(
            "Runtime.evaluate", self.session, expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"].get("exception", {}).get("description"))
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        """Open `url`, recording every Content-Security-Policy violation in `window.cspViolations`."""
        await self.devtools.send(
            "Page.addScriptToEvaluateOnNewDocument",
            self.session,
            source="window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
        )
        loaded = self.devtools.expect("Page.loadEventFired")
        await self.devtools.send("Page.navigate", self.session, url=url)
        await asyncio.wait_for(loaded, 30)

    async def wait_for(self, selector: str, test: str = "() => true") -> dict[str, Any]:
        found: dict[str, Any] = await self.evaluate(
            f"({WAIT_FOR})({json.dumps(selector)}, {test}, {WAIT_MS})"
        )
        return found

    async def type_into(self, element_id: str, text: str) -> None:
        """Focus, clear, and type as a user pasting would (an `input` event per insertion)."""
        await self.evaluate(
            f"(() => {{ const el = document.getElementById({json.dumps(element_id)});"
            " el.focus(); el.select(); })()"
        )
        await self.devtools.send("Input.insertText", self.session, text=text)

    async def click(self, element_id: str) -> None:
        await self.evaluate(f"document.getElementById({json.dumps(element_id)}).click()")

    async def viewport(self, metrics: dict[str, Any]) -> None:
        await self.devtools.send("Emulation.setDeviceMetricsOverride", self.session, **metrics)

    async def screenshot(self, name: str) -> Path:
        shot = await self.devtools.send("Page.captureScreenshot", self.session, format="png")
        path = SCREENSHOTS / f"parley-{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def require_chromium() -> None:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(f"CI=true requires it: {reason}", pytrace=False)
        pytest.skip(reason)


@contextlib.asynccontextmanager
async def chromium(profile: Path, *flags: str) -> AsyncIterator[Page]:
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        *CHROMIUM_FLAGS,
        *flags,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(profile)},
    )
    try:
        endpoint = await asyncio.wait_for(_devtools_endpoint(process), 30)
        async with connect(endpoint, max_size=None) as connection:
            devtools = DevTools(connection)
            target = await devtools.send("Target.createTarget", url="about:blank")
            attached = await devtools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
            page = Page(devtools, attached["sessionId"])
            await devtools.send("Page.enable", page.session)
            await devtools.send("Runtime.enable", page.session)
            devtools.record("Network.requestWillBeSent", "Network.loadingFailed", "Network.responseReceived")
            await devtools.send("Network.enable", page.session)
            try:
                yield page
            finally:
                devtools.reader.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_endpoint(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    async for raw in process.stderr:
        found = DEVTOOLS_LINE.search(raw.decode(errors="replace"))
        if found:
            asyncio.create_task(_drain(process.stderr))  # noqa: RUF006 - ends with the process
            return found.group(1)
    raise RuntimeError(f"chromium exited ({process.returncode}) before opening DevTools")


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def _ack_of(page: Page, event: str, index: int) -> dict[str, Any]:
    """The `index`-th ack logged for `event` (the log shows the newest first)."""
    test = (
        f"(el) => el.querySelector('code').textContent === {json.dumps(event)}"
        f" && document.querySelectorAll('#log li[data-kind=ack]').length >= {index + 1}"
    )
    await page.wait_for("#log li[data-kind=ack]", test)
    acks: list[dict[str, Any]] = await page.evaluate(
        "[...document.querySelectorAll('#log li[data-kind=ack]')].reverse().map((el) => ({"
        " when: el.querySelector('.when').textContent, ok: el.dataset.ok,"
        " body: JSON.parse(el.querySelector('pre').textContent) }))"
    )
    return acks[index]


async def test_console_logs_in_connects_emits_and_shows_the_ack(
    backend: Backend, start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    require_chromium()
    server = start_server(backend)
    async with httpx.AsyncClient(base_url=server.url) as http:
        account = await register_and_login(http)
        policy = (await http.get("/ws-docs")).headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    async with chromium(tmp_path / "profile") as page:
        await page.goto(f"{server.url}/ws-docs")
        assert (await page.evaluate("document.title")).startswith("Parley socket protocol")
        header = "getComputedStyle(document.querySelector('header')).backgroundColor"
        assert await page.evaluate(header) == "rgb(29, 35, 48)", "the stylesheet loaded under the policy"

        await page.type_into("token", "not-a-token")
        await page.click("connect")
        refused = await page.wait_for("#status", "(el) => el.dataset.state === 'error'")
        assert "UNAUTHORIZED" in refused["text"]

        await page.type_into("login-username", account.username)
        await page.type_into("login-password", PASSWORD)
        await page.click("login")
        await page.wait_for("#token", "(el) => el.value.split('.').length === 3")
        assert await page.evaluate("document.getElementById('login-password').value") == "", "not kept"
        await page.click("connect")
        await page.wait_for("#status", "(el) => el.dataset.state === 'connected'")
        ready = await page.wait_for(
            "#log li[data-kind=event]", "(el) => el.querySelector('code').textContent === 'session:ready'"
        )
        assert account.user_id in ready["text"]

        await page.evaluate(
            "(() => { const s = document.getElementById('event'); s.value = 'room:join';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        await page.type_into("payload", json.dumps({"room": "broadcast:all"}))
        await page.click("emit")
        joined = await _ack_of(page, "room:join", 0)
        assert joined["ok"] == "true"
        assert joined["body"] == {"ok": True, "data": {"room": "broadcast:all"}}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", joined["when"])

        await page.type_into("payload", json.dumps({"room": f"user:{'0' * 8}-0000-4000-8000-{'0' * 12}"}))
        await page.click("emit")
        refused_join = await _ack_of(page, "room:join", 1)
        assert refused_join["ok"] == "false"
        assert refused_join["body"]["ok"] is False
        assert refused_join["body"]["error"]["code"] == "FORBIDDEN"
        assert await page.evaluate("window.cspViolations") == [], "the page needs nothing its policy refuses"


def problems(page: Page, server: ServerProcess) -> list[str]:
    """What went wrong while loading: requests to another host, failed loads, answers of 400 or more."""
    seen = page.devtools.seen
    found = [
        f"asked another host: {event['request']['url']}"
        for event in seen["Network.requestWillBeSent"]
        if not event["request"]["url"].startswith((server.url, "data:"))
    ]
    found += [f"failed: {event.get('errorText')}" for event in seen["Network.loadingFailed"]]
    found += [
        f"{event['response']['status']} {event['response']['url']}"
        for event in seen["Network.responseReceived"]
        if event["response"]["status"] >= 400
    ]
    return found


async def test_docs_and_openapi_pages_need_nothing_but_the_server(
    backend: Backend, start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    require_chromium()
    server = start_server(backend)
    async with chromium(tmp_path / "profile", OFFLINE) as page:
        await page.viewport(DESKTOP)
        await page.goto(f"{server.url}/")
        assert await page.evaluate("location.pathname") == "/ws-docs", "the root leads to the docs"
        assert await page.evaluate("document.querySelectorAll('#getting-started .step').length") == 9
        assert await page.evaluate("window.cspViolations") == []
        desktop = await page.screenshot("ws-docs-desktop")

        await page.type_into("search", "typing")
        counted = await page.wait_for("#search-count", "(el) => el.textContent.includes('match')")
        total = await page.evaluate("document.querySelectorAll('article.event').length")
        cards = await page.evaluate(
            "[...document.querySelectorAll('article.event:not(.hidden)')].map((e) => e.id)"
        )
        listed = await page.evaluate(
            "[...document.querySelectorAll('li.nav-event:not(.hidden)')].map((e) => e.dataset.event)"
        )
        assert {"client.chat.typing", "server.chat.typing"} <= set(cards)
        assert sorted(listed) == sorted(cards), "the sidebar lists the matching events only"
        assert counted["text"] == f"{len(cards)} of {total} events match"
        shown = await page.evaluate(
            "document.querySelector('li.nav-category:not(.hidden) .count').textContent"
        )
        assert "/" in shown, "a category shows matched/total while searching"

        await page.viewport(PHONE)
        await page.goto(f"{server.url}/ws-docs")
        phone = await page.screenshot("ws-docs-phone")
        console_box = "document.getElementById('console').getBoundingClientRect().top"
        assert await page.evaluate(console_box) >= PHONE["height"] - 1, "the console waits below the screen"
        await page.click("console-toggle")
        await page.wait_for("#console", "(el) => el.classList.contains('open')")
        await page.evaluate(SETTLED.format(selector="#console"))
        assert await page.evaluate(console_box) < PHONE["height"] / 2, "the console slid up over the page"
        await page.screenshot("ws-docs-phone-console")

        await page.viewport(DESKTOP)
        await page.goto(f"{server.url}/schema")
        await page.wait_for(".opblock", "() => document.querySelectorAll('.opblock').length > 20")
        assert await page.evaluate("document.querySelector('.information-container .title').textContent")
        schema = await page.screenshot("schema-desktop")
        assert await page.evaluate("window.cspViolations") == []
        assert problems(page, server) == []
    for shot in (desktop, phone, schema):
        assert shot.stat().st_size > 10_000


async def test_a_script_in_a_description_stays_text(
    backend: Backend, start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    require_chromium()
    server = start_server(backend, factory="tests.support.hostile:create_asgi")
    async with chromium(tmp_path / "profile", OFFLINE) as page:
        await page.goto(f"{server.url}/ws-docs")
        card = "document.getElementById('server.xss.shouted').querySelector('.description')"
        text = await page.evaluate(f"{card}.textContent")
        assert "<script>window.injected = true</script>" in text
        assert "[click me](javascript:window.injected=true)" in text
        assert await page.evaluate(f"{card}.querySelectorAll('script, img, a').length") == 0
        assert await page.evaluate("typeof window.injected") == "undefined"
        assert await page.evaluate("window.cspViolations") == []
