"""The getting-started programs run, whole, against a live server on both backends.

They are the code `/ws-docs` and the README show (cut by their `[step …]` markers), so a change of the
protocol that breaks them fails here. Each run uses two fresh users; the programs talk to the server
with the official clients: socket.io-client, @parley/client (built from `clients/typescript`) and
python-socketio. Node finds the JavaScript packages through a `node_modules` folder made for the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.modules.docs.getting_started import SNIPPETS_DIR
from tests.support.backends import IN_CI, Backend
from tests.support.clients import PASSWORD
from tests.support.server import ROOT, ServerProcess

pytestmark = pytest.mark.e2e

SOCKET_IO_CLIENT = ROOT / ".ci" / "spec" / "node_modules" / "socket.io-client"
PARLEY_CLIENT = ROOT / "clients" / "typescript"
EXPECTED = [
    "logged in as {me}",
    "found {peer}",
    "#{first} me: Hello!",
    "#{second} {peer}: Hi there",
    "#{third} {peer}: Are you there?",
    "logged out: duplicate_login",
]


def require(path: Path, how: str) -> None:
    if not path.exists():
        reason = f"{path} is missing ({how})"
        if IN_CI:
            pytest.fail(f"CI=true requires it: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    logs = tmp_path_factory.mktemp("getting-started")
    process = ServerProcess(backend.env(), logs / "server.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def node_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where `import "socket.io-client"` and `import "@parley/client"` resolve."""
    folder = tmp_path_factory.mktemp("node-programs")
    (folder / "node_modules" / "@parley").mkdir(parents=True)
    (folder / "node_modules" / "socket.io-client").symlink_to(SOCKET_IO_CLIENT)
    (folder / "node_modules" / "@parley" / "client").symlink_to(PARLEY_CLIENT)
    return folder


def users(server: ServerProcess) -> dict[str, str]:
    """Two new users; the programs read their names and passwords from the environment."""
    names = {"PARLEY_USERNAME": f"a{uuid.uuid4().hex[:10]}", "PARLEY_PEER": f"b{uuid.uuid4().hex[:10]}"}
    for name in names.values():
        answer = httpx.post(f"{server.url}/api/auth/register", json={"username": name, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
    return {**names, "PARLEY_PASSWORD": PASSWORD, "PARLEY_PEER_PASSWORD": PASSWORD, "PARLEY_URL": server.url}


def run(command: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines() + result.stderr.splitlines()


def check(lines: list[str], env: dict[str, str]) -> None:
    """The program went through every step, in order, with the messages numbered 1, 2, 3."""
    expected = [
        line.format(me=env["PARLEY_USERNAME"], peer=env["PARLEY_PEER"], first=1, second=2, third=3)
        for line in EXPECTED
    ]
    shown = [line for line in lines if line in expected]
    assert shown == expected, "\n".join(lines)
    refused = [line for line in lines if line.startswith("a used refresh token is refused: ")]
    assert refused, "\n".join(lines)
    assert refused[0].rsplit(" ", 1)[1] in {"UNAUTHORIZED", "SESSION_REVOKED"}
    assert any(line.startswith("token renewed") for line in lines), "\n".join(lines)


def program(name: str, folder: Path) -> Path:
    copy = folder / name
    shutil.copyfile(SNIPPETS_DIR / name, copy)
    return copy


def test_the_socket_io_client_program(server: ServerProcess, node_folder: Path) -> None:
    require(SOCKET_IO_CLIENT, "npm ci --prefix .ci/spec")
    env = users(server)
    lines = run(["node", str(program("socketio-client.mjs", node_folder))], env, node_folder)
    check(lines, env)
    assert any(line.startswith("connected; 0 unread") for line in lines)


def test_the_parley_client_program(server: ServerProcess, node_folder: Path) -> None:
    require(PARLEY_CLIENT / "dist" / "index.js", "npm ci --prefix clients/typescript && npm run build there")
    env = users(server)
    check(run(["node", str(program("parley-client.mjs", node_folder))], env, node_folder), env)


def test_the_python_socketio_program(server: ServerProcess, tmp_path: Path) -> None:
    env = users(server)
    check(run([sys.executable, str(SNIPPETS_DIR / "python-socketio.py")], env, tmp_path), env)


def test_a_program_that_fails_fails_the_test(server: ServerProcess, tmp_path: Path) -> None:
    """The check can fail: a wrong password stops the program at its first step."""
    env = {**users(server), "PARLEY_PASSWORD": "not-the-password-42"}
    result = subprocess.run(
        [sys.executable, str(SNIPPETS_DIR / "python-socketio.py")],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "UNAUTHORIZED" in result.stderr
