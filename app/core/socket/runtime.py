"""The socket runtime: handshake, rooms on connect, `session:ready`, expiry, disconnect clean-up,
and the graceful stop (`drain`).

Built once per app from the modules' contributions; it is the `EventSink` of `ParleyServer`.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import socketio

from app.core.errors import AppError, ErrorCode
from app.core.faults import is_unavailable
from app.core.module import Module
from app.core.security.identity import Authenticator, Identity
from app.core.socket.dispatcher import Answer, Dispatcher
from app.core.socket.engine.outgoing import finish
from app.core.socket.engine.server import ParleyServer
from app.core.socket.gateway import BoundHandler
from app.core.socket.hub import SocketHub
from app.core.socket.protocol import EXCEPTION, FORCE_LOGOUT, AckError, ExceptionEvent, ForceLogout
from app.core.socket.ready import SessionReadyShape
from app.core.socket.rooms import RoomManager, identity_rooms
from app.core.socket.schemas import UserView
from app.core.socket.shutdown import close_transports
from app.core.socket.sockets import LocalSocket
from app.core.socket.timers import TimerHeap
from app.core.socket.tracker import ConnectionTracker

if TYPE_CHECKING:
    from app.core.context import AppContext

logger = logging.getLogger(__name__)

UNCOUNT_RETRY_MIN = 0.2
UNCOUNT_RETRY_MAX = 5.0
"""Seconds between tries to uncount a socket while the state backend is unavailable."""
POLL_FETCH_WITHIN = 2.0
"""Seconds polling clients get to fetch their last packets; a live one polls again within moments."""


RESTARTING = "The server is restarting; send again once reconnected"


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


def run_until_it_waits(
    work: Coroutine[Any, Any, None],
) -> tuple[Coroutine[Any, Any, None], contextvars.Context] | None:
    """Run `work` here, in a context of its own as a task would have, until it ends (None) or has
    to wait: then what finishes it, to run in a task in that context."""
    context = contextvars.copy_context()
    try:
        blocker = context.run(work.send, None)
    except StopIteration:
        return None
    return finish(work, blocker), context


class SocketRuntime:
    def __init__(
        self,
        ctx: AppContext,
        server: ParleyServer,
        hub: SocketHub,
        rooms: RoomManager,
        tracker: ConnectionTracker,
        modules: Sequence[Module],
        handlers: list[BoundHandler],
        ready: SessionReadyShape,
    ) -> None:
        self.ctx = ctx
        self.server = server
        self.hub = hub
        self.rooms = rooms
        self.tracker = tracker
        self.modules = modules
        self.settings = ctx.settings.socket
        self.limits = ready.limits(ctx.settings, [handler.spec.rate_limit for handler in handlers])
        self.ready = ready
        self.dispatcher = Dispatcher(
            ctx, hub, handlers, ctx.settings.rate_limits, self.settings.max_concurrent_handlers
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._expiries = TimerHeap()
        """Each socket's end at its token's expiry, on one loop timer."""
        self._draining = False
        server.attach_sink(self)

    @property
    def authenticator(self) -> Authenticator:
        return self.ctx.get(Authenticator)  # type: ignore[type-abstract]

    async def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        """Admit a socket or refuse it with `connect_error {code, message}`; never leak a count."""
        started = time.monotonic()
        try:
            identity, rooms = await self._admit(environ, auth)
        except AppError as error:
            self.ctx.metrics.errors.labels(error.code.value).inc()
            raise refusal(error.code, error.message) from None
        except Exception as exc:
            if not is_unavailable(exc):
                logger.exception("handshake of %s failed", sid, extra={"sid": sid})
                raise refusal(ErrorCode.INTERNAL, "Internal server error") from None
            logger.warning("refusing %s: a backing service is unavailable (%s)", sid, type(exc).__name__)
            self.ctx.metrics.errors.labels(ErrorCode.UNAVAILABLE.value).inc()
            raise refusal(ErrorCode.UNAVAILABLE, "Service temporarily unavailable") from None
        sock = LocalSocket(
            sid=sid, identity=identity, slots=asyncio.Semaphore(self.settings.max_concurrent_handlers)
        )
        self.hub.local.add(sock)
        self.ctx.metrics.sockets_connected.inc()
        try:
            await self.server.manager.enter_rooms(sid, rooms)
        except AppError as error:
            await self._unadmit(sock)
            self.ctx.metrics.errors.labels(error.code.value).inc()
            raise refusal(error.code, error.message) from None
        if await self.hub.catch_up(sid, started):
            await self._revoked_while_admitted(sock)
        self._schedule_expiry(sock)

    async def _unadmit(self, sock: LocalSocket) -> None:
        """Undo an admission refused after the socket was counted and registered (python-socketio
        takes it out of its rooms)."""
        self.hub.local.remove(sock.sid)
        self.ctx.metrics.sockets_connected.dec()
        await self._uncount(sock.identity.user_id)

    async def _revoked_while_admitted(self, sock: LocalSocket) -> None:
        """The socket's session (or user) was revoked after its token was checked: refuse it."""
        await self._unadmit(sock)
        logger.info(
            "refusing %s: its session was revoked during the handshake",
            sock.sid,
            extra={"sid": sock.sid, "user_id": sock.identity.user_id},
        )
        self.ctx.metrics.errors.labels(ErrorCode.SESSION_REVOKED.value).inc()
        raise refusal(ErrorCode.SESSION_REVOKED, "This session has been revoked; log in again")

    async def _admit(self, environ: dict[str, Any], auth: Any) -> tuple[Identity, list[str]]:
        """Verify the token, count the socket against the user's limit, and gather its rooms.

        The socket is counted before the limit is checked, so two simultaneous connects cannot both
        slip under it; any refusal after counting uncounts it.
        """
        async with self.ctx.shared_unit_of_work():
            identity = await self.authenticator.authenticate(bearer_token(environ, auth))
        total = await self.tracker.add(str(identity.user_id))
        try:
            self._check_socket_count(total)
            async with self.ctx.shared_unit_of_work(read_only=True):
                return identity, await self._connect_rooms(identity)
        except BaseException:
            await self._uncount(identity.user_id)
            raise

    def _check_socket_count(self, total: int) -> None:
        if total > self.settings.max_per_user:
            raise AppError(
                ErrorCode.RATE_LIMITED,
                f"Too many open connections for this user (at most {self.settings.max_per_user})",
            )

    async def _uncount(self, user_id: uuid.UUID) -> None:
        """Uncount a socket. A lost decrement would hold one of the user's slots for good, so while
        the state backend is unavailable it is tried again in the background until it is back."""
        if not await self._try_uncount(user_id):
            logger.warning(
                "could not uncount a socket of %s; retrying until the state backend is back",
                user_id,
                extra={"user_id": user_id},
            )
            self._spawn(self._uncount_when_back(user_id))

    async def _uncount_when_back(self, user_id: uuid.UUID) -> None:
        delay = UNCOUNT_RETRY_MIN
        while True:
            await asyncio.sleep(delay)
            if await self._try_uncount(user_id):
                logger.info("uncounted a socket of %s", user_id, extra={"user_id": user_id})
                return
            delay = min(delay * 2, UNCOUNT_RETRY_MAX)

    async def _try_uncount(self, user_id: uuid.UUID) -> bool:
        """False while the state backend is unavailable; True once done (or failed on a bug, logged)."""
        try:
            await self.tracker.remove(str(user_id))
        except Exception as exc:
            if is_unavailable(exc):
                return False
            logger.exception("could not uncount a socket of %s", user_id, extra={"user_id": user_id})
        return True

    async def _connect_rooms(self, identity: Identity) -> list[str]:
        rooms = identity_rooms(identity)
        for template in self.settings.default_rooms:
            if "{sessionId}" in template and identity.session_id is None:
                continue
            rooms.append(
                template.replace("{userId}", str(identity.user_id)).replace(
                    "{sessionId}", identity.session_id or ""
                )
            )
        for module in self.modules:
            for contribute in module.connect_rooms:
                rooms.extend(await contribute(self.ctx, identity))
        return list(dict.fromkeys(rooms))

    async def connected(self, sid: str) -> None:
        """After the CONNECT packet went out: tell modules, then send `session:ready`.

        A failing module hook is logged and skipped: it must not leave the socket without
        `session:ready`, nor flood the server log from inside the transport.
        """
        sock = self.hub.local.get(sid)
        if sock is None:
            return
        identity = sock.identity
        for module in self.modules:
            for hook in module.on_connect:
                await self._guarded(module, "connect hook", sock, hook(self.ctx, identity, sid))
        produced = await self._ready_parts(sock)
        base = {
            "user": UserView(str(identity.user_id), identity.username, identity.display_name),
            "session_id": identity.session_id,
            "rooms": sorted(self.hub.rooms_of(sid)),
            "server_time": dt.datetime.now(dt.UTC),
        }
        await self.hub.emit_to_socket(
            sid, self.ready.event.name, self.ready.payload(base, produced, self.limits)
        )

    async def _ready_parts(self, sock: LocalSocket) -> dict[str, Any]:
        """Every module's `session:ready` part, its queries on one database session that only reads."""
        produced: dict[str, Any] = {}
        async with self.ctx.shared_unit_of_work(read_only=True):
            for module in self.modules:
                for key, part in module.session_ready.items():
                    value = await self._guarded(
                        module, f"session:ready part {key}", sock, part.produce(self.ctx, sock.identity)
                    )
                    if value is not None:
                        produced[key] = value
        return produced

    @staticmethod
    async def _guarded(module: Module, what: str, sock: LocalSocket, work: Awaitable[Any]) -> Any:
        try:
            return await work
        except Exception:
            logger.exception(
                "%s of module %s failed for %s",
                what,
                module.name,
                sock.sid,
                extra={"sid": sock.sid, "user_id": sock.identity.user_id},
            )
            return None

    async def disconnected(self, sid: str, reason: str) -> None:
        sock = self.hub.local.remove(sid)
        if sock is None:
            return
        if sock.expiry is not None:
            self._expiries.cancel(sock.expiry)
        self.ctx.metrics.sockets_connected.dec()
        await self._uncount(sock.identity.user_id)
        for module in self.modules:
            for hook in module.on_disconnect:
                await self._guarded(module, "disconnect hook", sock, hook(self.ctx, sock.identity, sid))
        logger.debug(
            "socket %s disconnected: %s", sid, reason, extra={"sid": sid, "user_id": sock.identity.user_id}
        )

    async def event(self, sid: str, eio_sid: str, event: str, args: list[Any], ack_id: int | None) -> None:
        sock = self.hub.local.get(sid)
        if sock is None:
            return
        if self._draining:
            await self._refuse(sid, eio_sid, event, ack_id, AppError(ErrorCode.UNAVAILABLE, RESTARTING))
            return
        work = self.dispatcher.dispatch(sock, event, args, self._answerer(eio_sid, ack_id))
        if event in self.dispatcher.immediate:
            self._run_here(work)
        else:
            self._spawn(work)

    def _run_here(self, work: Coroutine[Any, Any, None]) -> None:
        """Run the dispatch of an event whose handler never waits here (`run_until_it_waits`): it
        ends before the next message is read, with no task, in the order the socket sent it. If it
        has to wait after all (the socket's handler slots are taken), it goes on in a task."""
        rest = run_until_it_waits(work)
        if rest is not None:
            self._spawn(*rest)

    def _answerer(self, eio_sid: str, ack_id: int | None) -> Answer | None:
        """Sends the ack of event `ack_id`; None when the client asked for no ack."""
        if ack_id is None:
            return None

        async def answer(data: Any) -> None:
            await self.server.send_ack(eio_sid, ack_id, data)

        return answer

    async def oversized(self, sid: str, eio_sid: str, event: str, ack_id: int | None, size: int) -> None:
        error = AppError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"Payload of {size} bytes exceeds the limit of {self.settings.max_payload_bytes}",
            {"limit": self.settings.max_payload_bytes},
        )
        await self._refuse(sid, eio_sid, event, ack_id, error)

    async def _refuse(self, sid: str, eio_sid: str, event: str, ack_id: int | None, error: AppError) -> None:
        """Answer an event that is not run: its ack, or an `exception` event when it asked for none."""
        self.ctx.metrics.errors.labels(error.code.value).inc()
        if ack_id is not None:
            await self.server.send_ack(eio_sid, ack_id, AckError.of(error))
        else:
            await self.hub.emit_to_socket(sid, EXCEPTION.name, ExceptionEvent.of(event, error))

    async def undecodable(self, sid: str, eio_sid: str, event: str, ack_id: int | None) -> None:
        sock = self.hub.local.get(sid)
        if sock is None:
            return
        error = AppError(
            ErrorCode.VALIDATION_ERROR,
            "payload: cannot be decoded (JSON nested too deeply or malformed)",
            {"field": "payload"},
        )
        self._spawn(self.dispatcher.reject(sock, event, error, self._answerer(eio_sid, ack_id)))

    def user_of(self, sid: str) -> str | None:
        sock = self.hub.local.get(sid)
        return str(sock.identity.user_id) if sock is not None else None

    def refresh(self, sid: str, identity: Identity) -> None:
        """`auth:refresh` accepted: the socket lives until the new token's expiry."""
        sock = self.hub.local.get(sid)
        if sock is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Socket is disconnected")
        sock.identity = identity
        self._schedule_expiry(sock)

    def _schedule_expiry(self, sock: LocalSocket) -> None:
        if sock.expiry is not None:
            self._expiries.cancel(sock.expiry)
        delay = max(0.0, (sock.identity.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        sock.expiry = self._expiries.call_later(delay, self._expire_now, sock.sid)

    def _expire_now(self, sid: str) -> None:
        self._spawn(self._expire(sid))

    async def _expire(self, sid: str) -> None:
        if sid not in self.hub.local:
            return
        await self.hub.emit_to_socket(
            sid, FORCE_LOGOUT.name, ForceLogout("token_expired", "Your token expired; log in again")
        )
        await self.server.disconnect(sid, ignore_queue=True)

    def _spawn(self, work: Coroutine[Any, Any, None], context: contextvars.Context | None = None) -> None:
        """Run `work` in a task this runtime keeps until it ends (and waits for at shutdown)."""
        task = asyncio.create_task(work, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, fetch_allowance: float = POLL_FETCH_WITHIN) -> None:
        """Stop gracefully (SPEC §9) within SHUTDOWN_GRACE; a second call does nothing.

        New events are answered UNAVAILABLE from now on, so nothing is left half done; running
        handlers finish and send their acks; then every transport is closed so that its client
        reconnects, to another node if this one is gone (never a namespace DISCONNECT, after which
        Socket.IO clients stay disconnected). Polling clients get `fetch_allowance` seconds to fetch
        their last packets. Handlers still running after all that are cancelled.
        """
        if self._draining:
            return
        self._draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.settings.serve.shutdown_grace
        waited = len(self._tasks)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - loop.time()))
        transports = len(self.server.eio.sockets)
        await close_transports(self.server.eio, loop.time() + fetch_allowance)
        cancelled = list(self._tasks)
        for task in cancelled:
            task.cancel()
        logger.info(
            "drained: waited for %d handlers, closed %d transports, cancelled %d handlers",
            waited,
            transports,
            len(cancelled),
        )

    async def shutdown(self) -> None:
        """The app's shutdown. `parley serve` drains before closing connections; under a bare ASGI
        server they are already closed here, so polling clients are not waited for."""
        await self.drain(fetch_allowance=0.0)
        self.ctx.metrics.flush()  # what the last events added, before the process goes
