"""Test clients: REST helpers and a real Socket.IO client that records every event."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import socketio

from app.cli import _create_user
from app.config.settings import Settings
from app.modules.accounts.schemas import RegisterIn
from tests.support.server import ServerProcess

PASSWORD = "correct-horse-42"


@dataclass
class Account:
    user_id: str
    username: str
    access_token: str
    refresh_token: str
    session_id: str


async def register_and_login(
    http: httpx.AsyncClient, username: str | None = None, device: str | None = None
) -> Account:
    username = username or f"u{uuid.uuid4().hex[:12]}"
    response = await http.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code in {201, 409}, response.text
    return await login(http, username, device)


async def login(http: httpx.AsyncClient, username: str, device: str | None = None) -> Account:
    body: dict[str, Any] = {"username": username, "password": PASSWORD}
    if device is not None:
        body["device"] = device
    response = await http.post("/api/auth/login", json=body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return Account(
        data["user"]["id"], username, data["access_token"], data["refresh_token"], data["session_id"]
    )


async def register_directly(
    http: httpx.AsyncClient, settings: Settings, *, admin: bool = False, device: str | None = None
) -> Account:
    """A new user, created as `parley users create` does, then logged in over `http`.

    The user is written on an engine of its own (the app under test may run on another event loop),
    with this process's password hasher: a test that makes it cheap (`tests/support/accounts.py`)
    gets users whose logins are cheap on any server, as argon2 verifies with the hash's own cost.
    """
    username = f"{'admin' if admin else 'u'}{uuid.uuid4().hex[:10]}"
    await _create_user(settings, RegisterIn(username=username, password=PASSWORD, display_name=None), admin)
    return await login(http, username, device)


async def register_admin(http: httpx.AsyncClient, settings: Settings) -> Account:
    """A new administrator, created as `parley users create --admin` does, then logged in over `http`."""
    return await register_directly(http, settings, admin=True)


def sign_token(claims: Mapping[str, Any], secret: str, algorithm: str = "HS256") -> str:
    """A JWT of `claims`, issued now and valid for five minutes unless `claims` say otherwise."""
    now = dt.datetime.now(dt.UTC)
    return jwt.encode(
        {"iat": now, "exp": now + dt.timedelta(minutes=5), **claims}, secret, algorithm=algorithm
    )


def external_token(server: ServerProcess, subject: str | None = None) -> str:
    """A token of a user of an external issuer (no session), signed with the server's secret.

    Such a user is provisioned on first use: no registration, so no password hashing.
    """
    return sign_token({"sub": subject or str(uuid.uuid4())}, server.env["JWT_SECRET"])


class RecordingClient:
    """A python-socketio AsyncClient whose incoming events can be awaited (never slept on)."""

    def __init__(self, *, reconnection: bool = False) -> None:
        self.sio = socketio.AsyncClient(reconnection=reconnection, reconnection_delay=0.2)
        self.events: defaultdict[str, list[Any]] = defaultdict(list)
        self._waiters: defaultdict[str, list[asyncio.Future[Any]]] = defaultdict(list)
        self.connect_error: Any = None
        self.disconnected = asyncio.Event()
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    async def _record(self, event: str, *args: Any) -> None:
        data = args[0] if len(args) == 1 else list(args)
        self.events[event].append(data)
        for waiter in self._waiters.pop(event, []):
            if not waiter.done():
                waiter.set_result(data)

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    async def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected.set()

    async def connect(self, url: str, token: str | None, transport: str = "websocket", **kwargs: Any) -> None:
        await self.sio.connect(
            url,
            auth={"token": token} if token is not None else None,
            transports=[transport],
            wait_timeout=10,
            **kwargs,
        )

    async def wait_for(self, event: str, timeout: float = 10.0, index: int = 0) -> Any:
        """The `index`-th occurrence of `event`, waiting for it if it has not arrived yet."""
        while len(self.events[event]) <= index:
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters[event].append(waiter)
            await asyncio.wait_for(waiter, timeout)
        return self.events[event][index]

    async def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        return await self.sio.call(event, data, timeout=timeout)

    async def close(self) -> None:
        await self.sio.shutdown()


async def connect_ready(
    make: Callable[[], RecordingClient], server: ServerProcess, token: str, transport: str = "websocket"
) -> RecordingClient:
    """A client from `make`, connected to `server` with `token` and past `session:ready`."""
    client = make()
    await client.connect(server.url, token, transport)
    await client.wait_for("session:ready")
    return client
