"""This node's sockets, by sid and by identity (user id, session id).

Revocations and removals find the sockets they concern here, on every node, never through a room a
client could leave. An operation chosen by identity is also remembered for `RECENT_SECONDS`: a socket
whose handshake (or handler) was checked against the database before the operation ran, and that is
registered (or joins a room) after it, gets the operation replayed (see `SocketHub.catch_up`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.core.security.identity import Identity
from app.core.socket.timers import Pending

RECENT_SECONDS = 60.0
"""How long an identity operation is kept for replay; far above a handshake's or handler's duration."""


@dataclass(slots=True)
class LocalSocket:
    """Per-socket state of this node (never stored on the namespace or server object)."""

    sid: str
    identity: Identity
    slots: asyncio.Semaphore
    """Bounds the handlers running at once for this socket (SOCKET_MAX_CONCURRENT_HANDLERS)."""
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    waiting: int = 0
    expiry: Pending | None = None


def selects(op: dict[str, Any], identity: Identity) -> bool:
    """Whether an operation chosen by identity (`users` or `sessions`) concerns this identity."""
    return str(identity.user_id) in op.get("users", ()) or (
        identity.session_id is not None and identity.session_id in op.get("sessions", ())
    )


class LocalSockets:
    def __init__(self) -> None:
        self._sockets: dict[str, LocalSocket] = {}
        self._by_user: dict[str, set[str]] = {}
        """Sids by user id as text, the form cross-node operations carry."""
        self._by_session: dict[str, set[str]] = {}
        self._recent: deque[tuple[float, dict[str, Any]]] = deque()

    def add(self, sock: LocalSocket) -> None:
        self._sockets[sock.sid] = sock
        self._by_user.setdefault(str(sock.identity.user_id), set()).add(sock.sid)
        if sock.identity.session_id is not None:
            self._by_session.setdefault(sock.identity.session_id, set()).add(sock.sid)

    def remove(self, sid: str) -> LocalSocket | None:
        sock = self._sockets.pop(sid, None)
        if sock is not None:
            _discard(self._by_user, str(sock.identity.user_id), sid)
            if sock.identity.session_id is not None:
                _discard(self._by_session, sock.identity.session_id, sid)
        return sock

    def get(self, sid: str) -> LocalSocket | None:
        return self._sockets.get(sid)

    def __contains__(self, sid: object) -> bool:
        return sid in self._sockets

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sockets))

    def of_user(self, user_id: str) -> list[str]:
        return sorted(self._by_user.get(user_id, ()))

    def selected_by(self, op: dict[str, Any]) -> list[str]:
        """The sids an operation chosen by identity concerns, on this node."""
        sids = {sid for user in op.get("users", ()) for sid in self._by_user.get(user, ())}
        sids.update(sid for session in op.get("sessions", ()) for sid in self._by_session.get(session, ()))
        return sorted(sids)

    def remember(self, op: dict[str, Any]) -> None:
        now = time.monotonic()
        self._recent.append((now, op))
        while self._recent and self._recent[0][0] < now - RECENT_SECONDS:
            self._recent.popleft()

    def recent_for(self, sid: str, since: float) -> list[dict[str, Any]]:
        """Identity operations applied on this node at or after `since` that concern socket `sid`."""
        sock = self._sockets.get(sid)
        if sock is None or not self._recent or self._recent[-1][0] < since:
            return []
        return [op for stamp, op in self._recent if stamp >= since and selects(op, sock.identity)]


def _discard(index: dict[str, set[str]], key: str, sid: str) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(sid)
        if not members:
            del index[key]
