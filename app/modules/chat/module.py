"""Chat: conversations, sequenced messages, sync, read state, mentions; provides `Membership`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.core.context import AppContext
from app.core.module import Module
from app.core.security.identity import Identity
from app.core.socket.ready import ReadyPart
from app.core.socket.rooms import RoomPrefix
from app.modules.chat.broadcasts import ChatEvents
from app.modules.chat.controller import ConversationController
from app.modules.chat.declarations import ACTIVE_ROOMS, GROUP_ROOMS
from app.modules.chat.deps import DEPENDENCIES
from app.modules.chat.gateway import ChatGateway
from app.modules.chat.membership import Membership
from app.modules.chat.notifications_controller import NotificationController
from app.modules.chat.read_state import ready_unread_summary
from app.modules.chat.room_hooks import ChatMembership, ParticipantRoomHook
from app.modules.chat.schemas import UnreadSummary
from app.modules.chat.sending import MessageSender
from app.modules.chat.store import connect_conversation_ids
from app.modules.chat.writer import MessageWriter


def _participants_only(rooms: RoomPrefix) -> Callable[[AppContext], ParticipantRoomHook]:
    def make(ctx: AppContext) -> ParticipantRoomHook:
        return ParticipantRoomHook(ctx.get(Membership), rooms)  # type: ignore[type-abstract]

    return make


async def _conversation_rooms(ctx: AppContext, identity: Identity) -> Sequence[str]:
    """`group:{id}` of the connecting user's most recently active unmuted conversations (one query),
    at most SESSION_READY_CONVERSATIONS of them, whatever others add the user to."""
    ids = await connect_conversation_ids(
        ctx.db.reads, identity.user_id, ctx.settings.socket.ready_conversations
    )
    return [GROUP_ROOMS.room(str(cid)) for cid in ids]


async def _unread(ctx: AppContext, identity: Identity) -> UnreadSummary:
    return await ready_unread_summary(ctx.db.reads, identity.user_id, ctx.settings.socket.ready_conversations)


async def _close_writer(ctx: AppContext) -> None:
    await ctx.get(MessageWriter).close()


chat_module = Module(
    name="chat",
    controllers=[ConversationController, NotificationController],
    gateways=[ChatGateway],
    dependencies=DEPENDENCIES,
    providers={
        Membership: ChatMembership,
        ChatEvents: ChatEvents,
        MessageWriter: MessageWriter,
        MessageSender: MessageSender,
    },
    on_shutdown=[_close_writer],
    room_hooks={
        GROUP_ROOMS.prefix: _participants_only(GROUP_ROOMS),
        ACTIVE_ROOMS.prefix: _participants_only(ACTIVE_ROOMS),
    },
    connect_rooms=[_conversation_rooms],
    session_ready={
        "unread": ReadyPart(
            _unread,
            UnreadSummary | None,
            "Unread messages and notifications; seed `chat:sync` from its conversations after a "
            "reconnect. Null when it could not be computed (the server logs why).",
            example={
                "conversations": [
                    {
                        "conversation_id": "7d0f5a8e-3c1b-4e2a-9f6d-1b2c3d4e5f60",
                        "unread": 2,
                        "last_seq": 42,
                        "last_read_seq": 40,
                        "mentions": 1,
                        "last_message": {
                            "id": "0b8e6c2a-9d4f-4a1b-8c3e-2f1a0b9c8d7e",
                            "conversation_id": "7d0f5a8e-3c1b-4e2a-9f6d-1b2c3d4e5f60",
                            "seq": 42,
                            "sender_id": "00000000-0000-4000-8000-000000000002",
                            "kind": "text",
                            "body": "@alice lunch?",
                            "client_msg_id": "b-42",
                            "created_at": "2026-11-22T08:59:30Z",
                        },
                    }
                ],
                "total": 2,
                "notifications": 1,
                "more": False,
                "next_cursor": None,
            },
        )
    },
)
