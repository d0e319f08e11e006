"""Room names and who may join them: one authorization hook per prefix.

Every room name is built and read back by the `RoomPrefix` of its family; the core's are here, a
module declares its own next to its events.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Protocol

from app.core.errors import AppError, ErrorCode
from app.core.security.identity import Identity
from app.core.socket.protocol import ROOM_NAME_MAX

ROOM_PATTERN = re.compile(r"^([a-z][a-z0-9_-]*:)[A-Za-z0-9_.:@-]+$")
PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9_-]*:")


@dataclass(frozen=True, slots=True)
class RoomPrefix:
    """A family of rooms, `{prefix}{key}` (`user:` and a user id, `group:` and a conversation id)."""

    prefix: str

    def __post_init__(self) -> None:
        if not PREFIX_PATTERN.fullmatch(self.prefix):
            raise ValueError(f"room prefix {self.prefix!r} must look like `name:`")

    def room(self, key: object) -> str:
        """The room of `key` in this family."""
        return f"{self.prefix}{key}"

    def holds(self, room: str) -> bool:
        return room.startswith(self.prefix)

    def key_of(self, room: str) -> str:
        """What follows the prefix in one of this family's rooms."""
        return room.removeprefix(self.prefix)


USER_ROOMS = RoomPrefix("user:")
"""`user:{id}`: every socket of a user."""
SESSION_ROOMS = RoomPrefix("session:")
"""`session:{id}`: every socket of a login session."""
BROADCAST_ROOMS = RoomPrefix("broadcast:")
"""`broadcast:…`: open to any authenticated user; `broadcast:all` reaches everyone."""


class RoomHook(Protocol):
    async def can_join(self, user_id: uuid.UUID, room: str) -> bool: ...


class OwnIdHook:
    """`user:{id}`: only the user themself."""

    def __init__(self, rooms: RoomPrefix) -> None:
        self.rooms = rooms

    async def can_join(self, user_id: uuid.UUID, room: str) -> bool:
        return room == self.rooms.room(user_id)


class AnyoneHook:
    """`broadcast:…`: any authenticated user."""

    async def can_join(self, user_id: uuid.UUID, room: str) -> bool:  # noqa: ARG002 - the hook protocol's signature
        return True


def identity_rooms(identity: Identity) -> list[str]:
    """`user:{id}` and `session:{sid}`: every socket of that user or session is in them for its whole
    life, and no client may leave them."""
    rooms = [USER_ROOMS.room(identity.user_id)]
    if identity.session_id is not None:
        rooms.append(SESSION_ROOMS.room(identity.session_id))
    return rooms


def room_prefix(room: str) -> str:
    """The `prefix:` of a well-formed room name; VALIDATION_ERROR otherwise."""
    match = ROOM_PATTERN.fullmatch(room) if len(room) <= ROOM_NAME_MAX else None
    if match is None:
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"room: expected `prefix:id` of at most {ROOM_NAME_MAX} characters",
            {"field": "room"},
        )
    return match.group(1)


class RoomManager:
    def __init__(self) -> None:
        self._hooks: dict[str, RoomHook] = {}

    def register_auth_hook(self, prefix: str, hook: RoomHook) -> None:
        if not PREFIX_PATTERN.fullmatch(prefix):
            raise ValueError(f"room prefix {prefix!r} must look like `name:`")
        if prefix in self._hooks:
            raise ValueError(f"room prefix {prefix!r} already has a hook")
        self._hooks[prefix] = hook

    async def authorize(self, user_id: uuid.UUID, room: str) -> None:
        """Raise VALIDATION_ERROR for a malformed name, FORBIDDEN if no hook admits the user."""
        prefix = room_prefix(room)
        hook = self._hooks.get(prefix)
        if hook is None:
            raise AppError(ErrorCode.FORBIDDEN, f"No one may join rooms of prefix {prefix!r}")
        if not await hook.can_join(user_id, room):
            raise AppError(ErrorCode.FORBIDDEN, f"You may not join {room}")
