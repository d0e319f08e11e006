"""Who may join `game:{table}`: the room hook Parley asks before a socket joins one."""

from __future__ import annotations

import uuid

ROOM_PREFIX = "game:"
OPEN_SUFFIX = "-open"


def room_of(table: str) -> str:
    return f"{ROOM_PREFIX}{table}"


class GameHook:
    """Tables whose name ends in `-open` admit anyone; any other only its owner, the user whose id
    is the table's name."""

    async def can_join(self, user_id: uuid.UUID, room: str) -> bool:
        table = room.removeprefix(ROOM_PREFIX)
        return table.endswith(OPEN_SUFFIX) or table == str(user_id)
