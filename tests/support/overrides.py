"""The overrides of python-socketio's and Engine.IO's private methods (listed in
`app.core.socket.engine`), each with the upstream signature it was written against; the tests of
each override check it first."""

from __future__ import annotations

import inspect
from typing import Any

import engineio
import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from app.core.socket.engine.managers import RedisManager
from app.core.socket.engine.server import ParleyServer, TransportServer
from app.core.socket.engine.transport import ParleyEngine

OVERRIDES: list[tuple[type[Any], type[Any], str, str]] = [
    (TransportServer, socketio.AsyncServer, "_engineio_server_class", "(self)"),
    (ParleyServer, socketio.AsyncServer, "_handle_eio_connect", "(self, eio_sid, environ)"),
    (ParleyServer, socketio.AsyncServer, "_handle_eio_disconnect", "(self, eio_sid, reason)"),
    (ParleyServer, socketio.AsyncServer, "_handle_connect", "(self, eio_sid, namespace, data)"),
    (ParleyServer, socketio.AsyncServer, "_handle_eio_message", "(self, eio_sid, data)"),
    (ParleyEngine, engineio.AsyncServer, "_handle_connect", "(self, environ, transport, jsonp_index=None)"),
    (RedisManager, AsyncPubSubManager, "_publish", "(self, data)"),
    (RedisManager, AsyncPubSubManager, "_handle_emit", "(self, message)"),
    # python-socketio's own Redis manager: `_thread` iterates `_listen`, an async generator there.
    (RedisManager, socketio.AsyncRedisManager, "_listen", "(self)"),
]
"""(our class, the upstream class, the private method, its upstream signature)."""


def assert_overrides(ours: type[Any], upstream: type[Any], name: str) -> None:
    """Fails once the upstream method is gone or is called differently than when it was overridden."""
    signature = next(entry[3] for entry in OVERRIDES if entry[:3] == (ours, upstream, name))
    assert name in vars(ours), f"{ours.__name__} no longer overrides {name}"
    method = getattr(upstream, name, None)
    assert method is not None, f"{upstream.__module__}.{upstream.__name__}.{name} is gone"
    assert str(inspect.signature(method)) == signature, f"{upstream.__name__}.{name} changed its signature"
    assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(vars(ours)[name])
    assert inspect.isasyncgenfunction(method) == inspect.isasyncgenfunction(vars(ours)[name])
