"""`parley serve` as a newcomer runs it: a fresh directory, the default SQLite file, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port, wait_until_healthy

pytestmark = pytest.mark.e2e

PARLEY = str(Path(sys.executable).parent / "parley")
PASSWORD = "correct-horse-42"
SHUTDOWN_WITHIN = 10.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`parley serve --port P` in an empty directory; yields the process, its URL and its log file."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {"PATH": os.environ.get("PATH", ""), "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [PARLEY, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, log_path, timeout=60.0)
        yield process, url, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_serve_register_login_me_then_sigterm(
    served: tuple[subprocess.Popen[bytes], str, Path], tmp_path: Path
) -> None:
    process, url, log_path = served
    assert (tmp_path / "parley.db").is_file(), "migrations create the default SQLite file on start"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.get("/health/ready")).json()["checks"] == {"database": "ok"}
        registered = await http.post(
            "/api/auth/register", json={"username": "newcomer", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        logged_in = await http.post("/api/auth/login", json={"username": "newcomer", "password": PASSWORD})
        assert logged_in.status_code == 200, logged_in.text
        token = logged_in.json()["data"]["access_token"]
        me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["data"]["username"] == "newcomer"

    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert process.wait(timeout=SHUTDOWN_WITHIN) == 0
    assert time.monotonic() - started < SHUTDOWN_WITHIN

    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any("ready" in entry["message"] for entry in entries)
    assert entries[-1]["message"] == "parley stopped"
    assert not any(entry["level"] in {"ERROR", "CRITICAL"} for entry in entries)
