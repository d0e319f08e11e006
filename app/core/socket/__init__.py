"""The Socket.IO gateway: decorated handlers, acks, rooms and cross-node operations."""

from app.core.socket.context import SocketContext
from app.core.socket.decorators import RateBucket, ServerEvent, server_event, ws_event, ws_response
from app.core.socket.gateway import Gateway

__all__ = [
    "Gateway",
    "RateBucket",
    "ServerEvent",
    "SocketContext",
    "server_event",
    "ws_event",
    "ws_response",
]
