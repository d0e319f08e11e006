"""The chat's server→client events, declared once: the hub emits them and the docs describe them."""

from __future__ import annotations

from app.core.socket import RateBucket, server_event
from app.core.socket.rooms import RoomPrefix
from app.modules.chat.schemas import (
    ChatMessageEvent,
    ChatReadEvent,
    ConversationDeletedEvent,
    ConversationUpdatedEvent,
    NotificationOut,
    ParticipantChange,
    UnreadUpdate,
)

CHAT_BUCKET = RateBucket("chat", lambda limits: limits.chat)
"""`chat:send` per socket (RATE_LIMIT_CHAT)."""

CONVERSATION = "7d0c3a52-1b7e-4c9a-9f5e-2a8b6c4d1e0f"
ALICE = "00000000-0000-4000-8000-000000000001"
BOB = "00000000-0000-4000-8000-000000000002"
MESSAGE = {
    "id": "5b1f0e8a-3c2d-4e6f-8a9b-0c1d2e3f4a5b",
    "conversation_id": CONVERSATION,
    "seq": 42,
    "sender_id": ALICE,
    "kind": "text",
    "body": "Hello @bob",
    "client_msg_id": "c-1732265000-1",
    "created_at": "2026-11-22T09:00:00.123456Z",
}
CONVERSATION_EXAMPLE = {
    "id": CONVERSATION,
    "kind": "group",
    "title": "Launch",
    "created_by": ALICE,
    "last_seq": 42,
    "created_at": "2026-11-20T08:00:00Z",
    "updated_at": "2026-11-22T09:00:00Z",
    "participants": [
        {"user_id": ALICE, "role": "owner", "last_read_seq": 42},
        {"user_id": BOB, "role": "member", "last_read_seq": 40},
    ],
}

GROUP_ROOMS = RoomPrefix("group:")
"""`group:{conversationId}`: the sockets of a conversation's participants (unless muted)."""
ACTIVE_ROOMS = RoomPrefix("active:")
"""`active:{conversationId}`: the sockets viewing a conversation (read receipts, typing)."""

CHAT_MESSAGE = server_event(
    "chat:message",
    ChatMessageEvent,
    description="A new message in one of your conversations (text, or a system notice such as "
    "'Bob left'). Seqs have no gaps: if one is skipped, ask `chat:sync` at once.",
    category="chat",
    room="group:{conversationId}, except the sending socket",
    examples=[{"message": MESSAGE}],
)
CHAT_READ = server_event(
    "chat:read",
    ChatReadEvent,
    description="A participant's read cursor moved forward.",
    category="chat",
    room="active:{conversationId}",
    examples=[{"conversation_id": CONVERSATION, "user_id": BOB, "last_read_seq": 42}],
)
UNREAD_UPDATE = server_event(
    "unread:update",
    UnreadUpdate,
    description="Your unread count changed because one of your sockets read a conversation; "
    "keeps your other tabs and devices in step.",
    category="chat",
    room="user:{userId}",
    examples=[{"conversation_id": CONVERSATION, "unread": 0, "total": 3}],
)
CONVERSATION_UPDATED = server_event(
    "conversation:updated",
    ConversationUpdatedEvent,
    description="A conversation was created with you in it, or its title changed.",
    category="conversations",
    room="group:{conversationId}",
    examples=[{"conversation": CONVERSATION_EXAMPLE}],
)
CONVERSATION_DELETED = server_event(
    "conversation:deleted",
    ConversationDeletedEvent,
    description="The owner deleted the conversation; its rooms are emptied right after.",
    category="conversations",
    room="group:{conversationId}",
    examples=[{"conversation_id": CONVERSATION}],
)
PARTICIPANT_ADDED = server_event(
    "conversation:participant_added",
    ParticipantChange,
    description="Someone was added (`by` added them). The added user's sockets have already joined "
    "the conversation's room, so they receive this too (through `user:{userId}` when a socket is "
    "at its room limit and could not join; it may leave a room and `room:join` this one).",
    category="conversations",
    room="group:{conversationId} (the added user included)",
    examples=[{"conversation_id": CONVERSATION, "user_id": BOB, "by": ALICE}],
)
PARTICIPANT_REMOVED = server_event(
    "conversation:participant_removed",
    ParticipantChange,
    description="Someone left (`by` is themselves) or was removed; the user's sockets leave the "
    "conversation's rooms right after. When the owner left, `new_owner` names who owns the group now "
    "(the longest-standing admin, else member).",
    category="conversations",
    room="group:{conversationId} (the removed user included)",
    examples=[{"conversation_id": CONVERSATION, "user_id": BOB, "by": BOB}],
)
NOTIFICATION_NEW = server_event(
    "notification:new",
    NotificationOut,
    description="Something for you to notice; kind `mention` when a participant wrote `@yourname`.",
    category="notifications",
    room="user:{userId}",
    examples=[
        {
            "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "kind": "mention",
            "title": "Alice mentioned you",
            "body": "Hello @bob",
            "data": {"conversation_id": CONVERSATION, "message_id": MESSAGE["id"], "seq": 42},
            "created_at": "2026-11-22T09:00:00.123456Z",
        }
    ],
)
