"""The socket runtime: handshake, rooms on connect, `session:ready`, expiry, disconnect clean-up.

Built once per app from the modules' contributions; it is the `EventSink` of `ParleyServer`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import socketio

from app.core.errors import AppError, ErrorCode
from app.core.module import Module
from app.core.security.identity import Authenticator, Identity
from app.core.socket.dispatcher import Dispatcher
from app.core.socket.gateway import BoundHandler
from app.core.socket.hub import LocalSocket, SocketHub
from app.core.socket.protocol import AckError, ExceptionEvent
from app.core.socket.rooms import RoomManager
from app.core.socket.schemas import Limits, SessionReady, UserView
from app.core.socket.server import ParleyServer
from app.core.socket.tracker import ConnectionTracker

if TYPE_CHECKING:
    from app.core.context import AppContext

logger = logging.getLogger(__name__)


def bearer_token(environ: dict[str, Any], auth: Any) -> str:
    """`auth: {token}` first, then an `Authorization: Bearer` header."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str) and auth["token"]:
        token: str = auth["token"]
        return token
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    raise AppError(
        ErrorCode.UNAUTHORIZED, "A token is required: send auth {token} or an Authorization header"
    )


def refusal(code: ErrorCode, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """A `connect_error` whose data is `{code, message}` (as `err.data` in the JS client)."""
    error = socketio.exceptions.ConnectionRefusedError(message)
    error.error_args = {
        "message": message,
        "code": code.value,
        "data": {"code": code.value, "message": message},
    }
    return error


class SocketRuntime:
    def __init__(
        self,
        app: AppContext,
        server: ParleyServer,
        hub: SocketHub,
        rooms: RoomManager,
        tracker: ConnectionTracker,
        modules: Sequence[Module],
        handlers: list[BoundHandler],
    ) -> None:
        self.app = app
        self.server = server
        self.hub = hub
        self.rooms = rooms
        self.tracker = tracker
        self.modules = modules
        self.settings = app.settings.socket
        self.dispatcher = Dispatcher(
            app, hub, handlers, app.settings.rate_limits, self.settings.max_concurrent_handlers
        )
        server.attach_sink(self)

    @property
    def authenticator(self) -> Authenticator:
        return self.app.get(Authenticator)  # type: ignore[type-abstract]

    async def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            identity = await self._admit(environ, auth)
        except AppError as error:
            self.app.metrics.errors.labels(error.code.value).inc()
            raise refusal(error.code, error.message) from None
        except (TimeoutError, OSError, ConnectionError) as exc:
            logger.warning("refusing %s: state backend unavailable (%s)", sid, type(exc).__name__)
            raise refusal(ErrorCode.UNAVAILABLE, "Service temporarily unavailable") from None
        except Exception as exc:
            if type(exc).__module__.startswith("redis"):
                logger.warning("refusing %s: Redis unavailable (%s)", sid, type(exc).__name__)
                raise refusal(ErrorCode.UNAVAILABLE, "Service temporarily unavailable") from None
            raise
        eio_sid = self.server.manager.eio_sid_from_sid(sid, "/")
        sock = LocalSocket(sid=sid, eio_sid=eio_sid, identity=identity, connected_at=time.monotonic())
        sock.slots = asyncio.Semaphore(self.settings.max_concurrent_handlers)
        self.hub.local[sid] = sock
        await self.tracker.add(identity.user_id)
        self.app.metrics.sockets_connected.inc()
        for room in await self._connect_rooms(identity):
            await self.server.enter_room(sid, room)
        self._schedule_expiry(sock)

    async def _admit(self, environ: dict[str, Any], auth: Any) -> Identity:
        identity = await self.authenticator.authenticate(bearer_token(environ, auth))
        if await self.tracker.count(identity.user_id) >= self.settings.max_per_user:
            raise AppError(ErrorCode.RATE_LIMITED, "Too many open connections for this user")
        return identity

    async def _connect_rooms(self, identity: Identity) -> list[str]:
        rooms: list[str] = []
        for template in self.settings.default_rooms:
            if "{sessionId}" in template and identity.session_id is None:
                continue
            rooms.append(
                template.replace("{userId}", identity.user_id).replace(
                    "{sessionId}", identity.session_id or ""
                )
            )
        if identity.session_id is not None:
            rooms.append(f"session:{identity.session_id}")
        for module in self.modules:
            for contribute in module.connect_rooms:
                rooms.extend(await contribute(self.app, identity))
        return list(dict.fromkeys(rooms))

    async def connected(self, sid: str) -> None:
        """After the CONNECT packet went out: tell modules, then send `session:ready`."""
        sock = self.hub.local.get(sid)
        if sock is None:
            return
        for module in self.modules:
            for hook in module.on_connect:
                await hook(self.app, sock.identity, sid)
        parts: dict[str, Any] = {}
        for module in self.modules:
            for key, part in module.session_ready.items():
                parts[key] = await part(self.app, sock.identity)
        ready = SessionReady(
            user=UserView(sock.identity.user_id, sock.identity.username, sock.identity.display_name),
            session_id=sock.identity.session_id,
            rooms=sorted(self.hub.rooms_of(sid)),
            server_time=dt.datetime.now(dt.UTC),
            unread=parts.get("unread"),
            announcements=parts.get("announcements", []),
            limits=Limits.from_settings(self.app.settings),
        )
        await self.server.emit("session:ready", ready, to=sid)

    async def disconnected(self, sid: str, reason: str) -> None:
        sock = self.hub.local.pop(sid, None)
        if sock is None:
            return
        if sock.expiry is not None:
            sock.expiry.cancel()
        self.app.metrics.sockets_connected.dec()
        try:
            await self.tracker.remove(sock.identity.user_id)
        except Exception:  # noqa: BLE001 - clean-up goes on; the count heals when the node's entry expires
            logger.warning("could not uncount socket %s of %s", sid, sock.identity.user_id)
        for module in self.modules:
            for hook in module.on_disconnect:
                try:
                    await hook(self.app, sock.identity, sid)
                except Exception:
                    logger.exception("disconnect hook of %s failed", module.name, extra={"sid": sid})
        logger.debug("socket %s of %s disconnected: %s", sid, sock.identity.user_id, reason)

    async def event(self, sid: str, eio_sid: str, event: str, args: list[Any], ack_id: int | None) -> None:
        sock = self.hub.local.get(sid)
        if sock is None:
            return

        async def answer(data: Any) -> None:
            assert ack_id is not None
            await self.server.send_ack(eio_sid, ack_id, data)

        task = asyncio.create_task(
            self.dispatcher.dispatch(sock, event, args, answer if ack_id is not None else None)
        )
        _running.add(task)
        task.add_done_callback(_running.discard)

    async def oversized(self, sid: str, eio_sid: str, event: str, ack_id: int | None, size: int) -> None:
        error = AppError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"Payload of {size} bytes exceeds the limit of {self.settings.max_payload_bytes}",
            {"limit": self.settings.max_payload_bytes},
        )
        self.app.metrics.errors.labels(error.code.value).inc()
        if ack_id is not None:
            await self.server.send_ack(eio_sid, ack_id, AckError.of(error))
        else:
            await self.hub.emit_raw(
                "exception", ExceptionEvent(event, error.code.value, error.message), room=sid
            )

    def refresh(self, sid: str, identity: Identity) -> None:
        """`auth:refresh` accepted: the socket lives until the new token's expiry."""
        sock = self.hub.local.get(sid)
        if sock is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Socket is disconnected")
        sock.identity = identity
        self._schedule_expiry(sock)

    def _schedule_expiry(self, sock: LocalSocket) -> None:
        if sock.expiry is not None:
            sock.expiry.cancel()
        delay = max(0.0, (sock.identity.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        loop = asyncio.get_running_loop()
        sock.expiry = loop.call_later(delay, lambda: _spawn(self._expire(sock.sid)))

    async def _expire(self, sid: str) -> None:
        if sid not in self.hub.local:
            return
        await self.hub.emit_raw(
            "force_logout",
            {"reason": "token_expired", "message": "Your token expired; log in again"},
            room=sid,
        )
        await self.server.disconnect(sid)

    async def shutdown(self) -> None:
        """Tell every local socket the server is going away, then close them."""
        for sid in list(self.hub.local):
            try:
                await self.server.disconnect(sid)
            except Exception:  # noqa: BLE001 - best effort while shutting down
                logger.debug("socket %s already gone at shutdown", sid)


_running: set[asyncio.Task[Any]] = set()


def _spawn(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    _running.add(task)
    task.add_done_callback(_running.discard)
