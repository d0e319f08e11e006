"""Server→client events of presence and typing."""

from __future__ import annotations

from app.core.socket import RateBucket, server_event
from app.core.socket.rooms import RoomPrefix
from app.modules.presence.schemas import TypingOut, UserStatus

PRESENCE_ROOMS = RoomPrefix("presence:")
"""`presence:{userId}`: the sockets following a user's online status."""

TYPING_BUCKET = RateBucket("typing", lambda limits: limits.typing)
"""`chat:typing` per socket (RATE_LIMIT_TYPING)."""

EXAMPLE_USER = "00000000-0000-4000-8000-000000000002"
EXAMPLE_CONVERSATION = "00000000-0000-4000-8000-0000000000c1"

USER_STATUS = server_event(
    "user:status",
    UserStatus,
    description="A user came online (first socket on any node) or went offline: their last socket closed "
    "and none came back within the grace period (PRESENCE_TTL / 4, at most 2 s, so a page reload does "
    "not flap), or their node stopped heartbeating (reported within about PRESENCE_TTL). "
    "Several tabs count once. Subscribe with `presence:subscribe`.",
    category="presence",
    room="presence:{userId}",
    examples=[
        {"user_id": EXAMPLE_USER, "status": "online", "last_seen_at": None},
        {"user_id": EXAMPLE_USER, "status": "offline", "last_seen_at": "2026-11-22T09:00:00Z"},
    ],
)
CHAT_TYPING = server_event(
    "chat:typing",
    TypingOut,
    description="Someone in a conversation you are viewing started or stopped typing. `expires_in` is "
    "how long to show it without news (TYPING_TTL); the server also sends `typing: false` when it lapses, "
    "when the typist stops or disconnects. A typist's repeats are re-broadcast at most once per "
    "TYPING_TTL / 2 (at most 3 s).",
    category="chat",
    room="active:{conversationId} (not the typist)",
    examples=[
        {
            "conversation_id": EXAMPLE_CONVERSATION,
            "user_id": EXAMPLE_USER,
            "typing": True,
            "expires_in": 6,
        }
    ],
)
