"""socket.io-client (the official JavaScript client) with default options, many sockets in one Node
process: `tests/e2e/js/clients.mjs`, installed by `npm ci --prefix tests/e2e/js` (`.ci/run`)."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.backends import unavailable

JS_DIR = Path(__file__).resolve().parents[1] / "e2e" / "js"


def require_js_clients() -> None:
    """Skip (in CI: fail) without Node or without the installed socket.io-client."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        missing.append(f"socket.io-client (npm ci --prefix {JS_DIR})")
    if missing:
        unavailable(f"missing {' and '.join(missing)}", "the JavaScript clients")


@dataclass(frozen=True)
class JsClient:
    token: str
    conversation_id: str
    expect: int
    """chat:message events this client should receive (one per other member of the conversation)."""


class JsClients:
    """One Node process driving many sockets: `ready()` after connecting, `exchange()` to chat."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, clients: list[JsClient], timeout: float) -> JsClients:
        require_js_clients()
        process = await asyncio.create_subprocess_exec(
            "node",
            str(JS_DIR / "clients.mjs"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=JS_DIR,
        )
        config = {
            "url": url,
            "clients": [
                {"token": c.token, "conversation_id": c.conversation_id, "expect": c.expect} for c in clients
            ],
            "timeout_ms": int(timeout * 1000),
        }
        started = cls(process)
        await started._say(json.dumps(config))
        return started

    async def ready(self, timeout: float) -> dict[str, Any]:
        """`{phase, tried, connected, upgraded, failures, sids}` once every client connected or failed."""
        return await self._read(timeout)

    async def exchange(self, timeout: float) -> dict[str, Any]:
        """Every client sends one acked chat:send and waits for its peers' messages:
        `{acked, received, missing, failures}`."""
        await self._say("send")
        return await self._read(timeout)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()

    async def _say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the JavaScript clients exited with {await self.process.wait()}")
        report: dict[str, Any] = json.loads(line)
        return report
