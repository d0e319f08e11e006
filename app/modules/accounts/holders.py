"""Who a token speaks for, kept in process so that most token checks read no database.

- `TokenHolders`: users by id. The fields a token check reads (username, display name, admin flag)
  are written once, when the user is created, and users are never deleted: an entry never goes stale.
- `LiveSessions`: login sessions seen live, by id, with their owner and expiry. A session that ends is
  dropped on every node before the request that ended it answers (`SessionEndings`); an entry is used
  only while its expiry is ahead (a refresh only moves the expiry later: the database is asked again)
  and for at most `TRUSTED_FOR` seconds, which bounds what a node that missed a signal can get wrong.
  A check that read the database while a session was being dropped does not store what it read: it
  could be the state from before the revocation.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.modules.accounts.sessions import TokenHolder

KEPT = 65536
"""Entries each cache keeps; the least recently used go first."""
TRUSTED_FOR = 30.0
"""Seconds a session seen live is taken as live without asking the database again."""

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A mapping that keeps its `size` most recently used entries."""

    def __init__(self, size: int = KEPT) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)


class TokenHolders(Recent[uuid.UUID, TokenHolder]):
    """Users by id, as a token check needs them."""

    def keep(self, holder: TokenHolder) -> None:
        self.put(holder.user_id, holder)


@dataclass(frozen=True, slots=True)
class LiveSession:
    user_id: uuid.UUID
    expires_at: dt.datetime
    seen_at: float
    """`time.monotonic()` when the database said it was live."""


class LiveSessions:
    def __init__(self, size: int = KEPT) -> None:
        self._kept: Recent[str, LiveSession] = Recent(size)
        self.drops = 0
        """How many times sessions were dropped: a check that saw it change while it read the database
        does not store what it read."""

    def owner(self, session_id: str, now: dt.datetime) -> uuid.UUID | None:
        """The owner of a session seen live within `TRUSTED_FOR` seconds and not expired by `now`."""
        kept = self._kept.get(session_id)
        if kept is None:
            return None
        if kept.expires_at <= now or time.monotonic() - kept.seen_at > TRUSTED_FOR:
            self._kept.pop(session_id)
            return None
        return kept.user_id

    def keep(self, session_id: str, user_id: uuid.UUID, expires_at: dt.datetime, drops_before: int) -> None:
        """Store a session the database said is live, unless a drop happened since `drops_before`."""
        if self.drops == drops_before:
            self._kept.put(session_id, LiveSession(user_id, expires_at, time.monotonic()))

    def drop(self, session_ids: tuple[str, ...] | list[str]) -> None:
        self.drops += 1
        for session_id in session_ids:
            self._kept.pop(session_id)
