"""ASGI entry point: `uvicorn --factory app.asgi:create_asgi`."""

from __future__ import annotations

import socketio

from app.config.settings import get_settings
from app.core.app_factory import create_app


def create_asgi() -> socketio.ASGIApp:
    return create_app(get_settings()).asgi
