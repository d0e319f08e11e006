"""ASGI entry point: `uvicorn --factory app.asgi:create_asgi`."""

from __future__ import annotations

import gc

import socketio

from app.config.settings import get_settings
from app.main import create_app


def create_asgi() -> socketio.ASGIApp:
    asgi = create_app(get_settings()).asgi
    leave_startup_to_the_collector()
    return asgi


def leave_startup_to_the_collector() -> None:
    """Exempt what start-up built from garbage collection, so closed connections are freed promptly.

    A closed connection leaves reference cycles (the server's protocol objects and the websocket
    library's parser refer to themselves), which only the cyclic collector frees. It runs a full
    collection once the objects promoted since the last one reach a quarter of those that survived
    it; in a fresh server process that is everything imported and built, so the garbage of a
    thousand closed connections (about 45 KiB each, compression state included) would wait for it.
    Frozen, that heap no longer counts, and a full collection follows a few dozen departures.
    """
    gc.collect()
    gc.freeze()
