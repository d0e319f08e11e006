"""From a decoded event to an answer: validate, limit, inject, run, ack (or `exception`)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from app.config.settings import RateLimit, RateLimitSettings
from app.core.db import UnitOfWork
from app.core.errors import AppError, ErrorCode
from app.core.faults import is_unavailable
from app.core.socket.context import SocketContext
from app.core.socket.decorators import DEFAULT_BUCKET, EventSpec, RateBucket
from app.core.socket.gateway import BoundHandler
from app.core.socket.hub import SocketHub
from app.core.socket.protocol import EVENT_NAME_ECHO_MAX, EXCEPTION, AckError, AckOk, ExceptionEvent
from app.core.socket.sockets import LocalSocket
from app.core.text import explain

if TYPE_CHECKING:
    from app.core.context import AppContext

logger = logging.getLogger(__name__)

Answer = Callable[[Any], Awaitable[None]]
_FIELD = re.compile(r"at `\$\.?([^`]*)`|field `([^`]+)`")
QUEUE_FACTOR = 4


def validation_failure(exc: msgspec.ValidationError) -> AppError:
    """VALIDATION_ERROR naming the offending field, from msgspec's message."""
    text = explain(str(exc))
    found = _FIELD.findall(text)
    path = next((a or b for a, b in reversed(found) if a or b), "payload")
    field = path.replace("[", ".").replace("]", "").strip(".") or "payload"
    return AppError(ErrorCode.VALIDATION_ERROR, text, {"field": field})


def decode_payload(spec: EventSpec, args: list[Any]) -> Any:
    """The payload as its Struct; None for an event that takes none, which refuses any argument
    (even `{}` or `null`) as a mismatch, as every other payload that does not fit its type."""
    if spec.payload is None:
        if args:
            raise AppError(
                ErrorCode.VALIDATION_ERROR,
                f"payload: {spec.name} takes no payload; emit it with none",
                {"field": "payload"},
            )
        return None
    if len(args) != 1:
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            "payload: expected exactly one object",
            {"field": "payload"},
        )
    try:
        return msgspec.convert(args[0], spec.payload)
    except msgspec.ValidationError as exc:
        raise validation_failure(exc) from None


@dataclass(frozen=True, slots=True)
class Resolver:
    name: str
    kind: str
    type: type[Any]


def resolvers_for(handler: BoundHandler) -> tuple[Resolver, ...]:
    resolved = []
    for name, annotation in handler.parameters:
        if annotation is SocketContext:
            kind = "context"
        elif handler.spec.payload is not None and annotation is handler.spec.payload:
            kind = "payload"
        elif annotation is UnitOfWork:
            kind = "uow"
        elif isinstance(annotation, type) and issubclass(annotation, SQLAlchemyAsyncRepositoryService):
            kind = "service"
        else:
            kind = "provider"
        resolved.append(Resolver(name, kind, annotation))
    return tuple(resolved)


class Dispatcher:
    def __init__(
        self,
        ctx: AppContext,
        hub: SocketHub,
        handlers: list[BoundHandler],
        rate_limits: RateLimitSettings,
        max_concurrent: int,
    ) -> None:
        self.ctx = ctx
        self.hub = hub
        self.handlers = {h.spec.name: h for h in handlers}
        self.resolvers = {h.spec.name: resolvers_for(h) for h in handlers}
        # The events whose handlers take a SocketContext, and those taking a unit of work or a
        # service: the others are called without building what they would not read.
        self.contextual = {
            name for name, found in self.resolvers.items() if any(r.kind == "context" for r in found)
        }
        self.immediate = frozenset(name for name, handler in self.handlers.items() if not handler.waits)
        """Events whose dispatch finishes without waiting unless the socket's handler slots are
        taken: the handler never waits, and neither does its ack."""
        self.transactional = {
            name for name, found in self.resolvers.items() if any(r.kind in ("uow", "service") for r in found)
        }
        self.rate_limits = rate_limits
        self.max_concurrent = max(1, max_concurrent)
        self.figures = hub.metrics.event_figures([*self.handlers, "unknown"], self.handlers)
        self._sizes: dict[RateBucket, tuple[RateLimit, float, float]] = {}

    def check_providers(self) -> None:
        """Fail at start-up, not at the first event, if a handler depends on something nobody provides."""
        for resolvers in self.resolvers.values():
            for resolver in resolvers:
                if resolver.kind == "provider":
                    self.ctx.get(resolver.type)

    async def dispatch(self, sock: LocalSocket, event: str, args: list[Any], answer: Answer | None) -> None:
        started = time.perf_counter()
        handler = self.handlers.get(event)
        self.figures.count(event if handler is not None else "unknown")
        try:
            result = await self._run(sock, event, handler, args)
        except AppError as error:
            await self._fail(sock, event, handler, error, answer)
        except Exception as exc:
            who = {"sid": sock.sid, "user_id": sock.identity.user_id}
            if is_unavailable(exc):
                logger.warning(
                    "handler of %s: a backing service is unavailable (%s)",
                    event,
                    type(exc).__name__,
                    extra=who,
                )
                failure = AppError(ErrorCode.UNAVAILABLE, "Service temporarily unavailable; try again")
            else:
                logger.exception("handler of %s failed", event, extra=who)
                failure = AppError(ErrorCode.INTERNAL, "Internal server error")
            await self._fail(sock, event, handler, failure, answer)
        else:
            if answer is not None:
                await answer(AckOk(ok=True, data=result if result is not None else {}))
        finally:
            if handler is not None:
                self.figures.time(event, time.perf_counter() - started)

    async def reject(self, sock: LocalSocket, event: str, error: AppError, answer: Answer | None) -> None:
        """Answer an event refused before its payload could be decoded, after its rate-limit token."""
        try:
            self._take_token(sock, DEFAULT_BUCKET)
        except AppError as limited:
            error = limited
        await self._fail(sock, event, self.handlers.get(event), error, answer)

    async def _fail(
        self,
        sock: LocalSocket,
        event: str,
        handler: BoundHandler | None,
        error: AppError,
        answer: Answer | None,
    ) -> None:
        error.rollback = error.rollback or (handler is not None and handler.spec.optimistic)
        self.hub.metrics.errors.labels(error.code.value).inc()
        if answer is not None:
            await answer(AckError.of(error))
        elif sock.sid in self.hub.local:
            await self.hub.emit_to_socket(sock.sid, EXCEPTION.name, ExceptionEvent.of(event, error))

    async def _run(self, sock: LocalSocket, event: str, handler: BoundHandler | None, args: list[Any]) -> Any:
        if handler is None:
            self._take_token(sock, DEFAULT_BUCKET)
            raise AppError(ErrorCode.NOT_FOUND, f"Unknown event {event[:EVENT_NAME_ECHO_MAX]!r}")
        self._take_token(sock, handler.spec.rate_limit)
        payload = decode_payload(handler.spec, args)
        if sock.waiting >= self.max_concurrent * QUEUE_FACTOR:
            raise AppError(ErrorCode.RATE_LIMITED, "Too many events in flight on this socket")
        sock.waiting += 1
        try:
            await sock.slots.acquire()
        finally:
            sock.waiting -= 1
        try:
            return await self._invoke(sock, handler, payload)
        finally:
            sock.slots.release()

    def _take_token(self, sock: LocalSocket, bucket: RateBucket) -> None:
        if not self.rate_limits.enabled:
            return
        size = self._sizes.get(bucket)
        if size is None:  # the settings are frozen: each bucket's size is read once
            limit = bucket.size(self.rate_limits)
            size = self._sizes[bucket] = (limit, float(limit.capacity), limit.refill_per_second)
        limit, capacity, refill = size
        now = time.monotonic()
        tokens, stamp = sock.buckets.get(bucket.name, (capacity, now))
        tokens = min(capacity, tokens + (now - stamp) * refill)
        if tokens < 1.0:
            sock.buckets[bucket.name] = (tokens, now)
            retry_after = (1.0 - tokens) / refill
            raise AppError(
                ErrorCode.RATE_LIMITED,
                f"Too many {bucket.name} events; retry in {retry_after:.2f}s",
                {"retry_after": round(retry_after, 3), "limit": str(limit)},
            )
        sock.buckets[bucket.name] = (tokens - 1.0, now)

    async def _invoke(self, sock: LocalSocket, handler: BoundHandler, payload: Any) -> Any:
        if sock.sid not in self.hub.local:
            raise AppError(ErrorCode.UNAUTHORIZED, "Socket is disconnected")
        name = handler.spec.name
        resolvers = self.resolvers[name]
        context = None
        if name in self.contextual:
            context = SocketContext(sock.sid, sock.identity, self.ctx, self.hub)
        if name not in self.transactional:  # a unit of work nobody is handed is not opened
            return await self._call(handler, self._arguments(resolvers, context, payload, None))
        async with UnitOfWork(self.ctx.db) as uow:
            return await self._call(handler, self._arguments(resolvers, context, payload, uow))

    def _arguments(
        self,
        resolvers: tuple[Resolver, ...],
        context: SocketContext | None,
        payload: Any,
        uow: UnitOfWork | None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for resolver in resolvers:
            if resolver.kind == "context":
                kwargs[resolver.name] = context
            elif resolver.kind == "payload":
                kwargs[resolver.name] = payload
            elif resolver.kind == "uow":
                kwargs[resolver.name] = uow
            elif resolver.kind == "service":
                assert uow is not None
                kwargs[resolver.name] = uow.service(resolver.type)
            else:
                kwargs[resolver.name] = self.ctx.get(resolver.type)
        return kwargs

    @staticmethod
    async def _call(handler: BoundHandler, kwargs: dict[str, Any]) -> Any:
        try:
            return await handler.call(**kwargs)
        except msgspec.ValidationError as exc:
            raise validation_failure(exc) from None
