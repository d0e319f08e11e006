"""Compose modules into one Litestar app wrapped by python-socketio's ASGI app (`app.main` says which)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import socketio
from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from app.config.settings import Settings
from app.core.context import AppContext
from app.core.db import Database
from app.core.http.auth import AUTH_DEPENDENCIES
from app.core.http.exceptions import EXCEPTION_HANDLERS
from app.core.http.openapi import document_errors, openapi_config
from app.core.http.rate_limit import rest_rate_limit
from app.core.http.request import ParleyRequest
from app.core.http.security_headers import add_security_headers
from app.core.logging import configure_logging
from app.core.module import Module
from app.core.module_order import order_modules
from app.core.security.identity import Authenticator
from app.core.security.tokens import TokenCodec
from app.core.socket.engine.managers import LocalManager, RedisManager
from app.core.socket.engine.server import ParleyServer
from app.core.socket.gateway import bind_handlers
from app.core.socket.hub import SocketHub
from app.core.socket.protocol import CORE_EVENTS
from app.core.socket.ready import compose_session_ready
from app.core.socket.registry import EventRegistry
from app.core.socket.rooms import RoomManager
from app.core.socket.runtime import SocketRuntime
from app.core.socket.sids import owner_prefix
from app.core.socket.tracker import ConnectionTracker
from app.core.state import create_state_backend

logger = logging.getLogger(__name__)

CORE_REQUIRES = (Authenticator,)
"""What the socket layer and the REST guards take from a module: who a token belongs to."""


@dataclass(frozen=True, slots=True)
class ParleyApp:
    context: AppContext
    litestar: Litestar
    asgi: socketio.ASGIApp


def _dependencies(modules: Sequence[Module]) -> dict[str, Provide]:
    merged: dict[str, Provide] = dict(AUTH_DEPENDENCIES)
    for module in modules:
        for key, provider in module.dependencies.items():
            if key in merged:
                raise RuntimeError(f"dependency {key!r} of module {module.name} is already provided")
            merged[key] = provider
    return merged


def _socket_layer(
    ctx: AppContext, modules: Sequence[Module], worker: int | None
) -> tuple[ParleyServer, SocketRuntime]:
    settings = ctx.settings
    manager: Any = (
        RedisManager(settings.redis_url, f"{settings.redis_prefix}socketio", ctx.metrics)
        if settings.redis_url
        else LocalManager()
    )
    server = ParleyServer(settings.socket, manager, ctx.metrics)
    server.eio.sid_prefix = owner_prefix(settings.serve.node_name, worker)
    hub = SocketHub(server, ctx.metrics, settings.socket.max_rooms)
    ctx.attach_hub(hub)
    rooms = RoomManager()
    for module in modules:
        for prefix, make_hook in module.room_hooks.items():
            rooms.register_auth_hook(prefix, make_hook(ctx))
    tracker = ConnectionTracker(ctx.state, ctx.node_id, settings.presence_ttl)
    gateways = [gateway_type(ctx) for module in modules for gateway_type in module.gateways]
    ready = compose_session_ready(
        [(module.name, module.session_ready) for module in modules],
        [(module.name, module.limits) for module in modules],
    )
    registry = EventRegistry(gateways, core_events=(ready.event, *CORE_EVENTS))
    ctx.provide(SocketHub, hub)
    ctx.provide(RoomManager, rooms)
    ctx.provide(ConnectionTracker, tracker)
    ctx.provide(EventRegistry, registry)
    handlers = [bound for gateway in gateways for bound in bind_handlers(gateway)]
    runtime = SocketRuntime(ctx, server, hub, rooms, tracker, modules, handlers, ready)
    ctx.provide(SocketRuntime, runtime)
    runtime.dispatcher.check_providers()
    return server, runtime


def build_app(settings: Settings, modules: Sequence[Module], *, worker: int | None = None) -> ParleyApp:
    """The app of one process made of `modules`; `worker` is its index under `parley serve --workers N`.

    `modules` may come in any order (`order_modules`); a ModuleError says in one line why they cannot
    be composed."""
    modules = order_modules(modules, CORE_REQUIRES)
    configure_logging(settings.log_level, settings.log_format)
    db = Database(settings)
    ctx = AppContext(
        settings=settings,
        db=db,
        state=create_state_backend(settings, prefix=settings.redis_prefix),
        tokens=TokenCodec(settings.jwt),
    )
    for module in modules:
        for key, make in module.providers.items():
            ctx.provide(key, make(ctx))
    server, runtime = _socket_layer(ctx, modules, worker)

    async def startup() -> None:
        if not server.manager_initialized:
            server.manager_initialized = True
            server.manager.initialize()
        await ctx.get(ConnectionTracker).start()
        for module in modules:
            for hook in module.on_startup:
                await hook(ctx)
        logger.info("parley node %s ready (%s)", ctx.node_id, "redis" if settings.redis_url else "in-process")

    async def shutdown() -> None:
        await runtime.shutdown()
        for module in reversed(modules):
            for hook in module.on_shutdown:
                await hook(ctx)
        await ctx.get(ConnectionTracker).stop()
        await server.manager.close()
        await ctx.state.close()
        await db.dispose()

    litestar = Litestar(
        route_handlers=[controller for module in modules for controller in module.controllers],
        dependencies=_dependencies(modules),
        plugins=[SQLAlchemyPlugin(config=db.plugin_config())],
        exception_handlers=EXCEPTION_HANDLERS,
        guards=[rest_rate_limit],
        before_send=[add_security_headers],
        request_class=ParleyRequest,
        on_startup=[startup],
        on_shutdown=[shutdown],
        openapi_config=openapi_config(settings, "0.1.0"),
        state=State({"ctx": ctx}),
        logging_config=None,  # LOG_LEVEL / LOG_FORMAT rule; Litestar's default would reset the root logger
        debug=False,
    )
    document_errors(litestar)
    asgi = socketio.ASGIApp(server, other_asgi_app=litestar, socketio_path="socket.io")
    return ParleyApp(context=ctx, litestar=litestar, asgi=asgi)
