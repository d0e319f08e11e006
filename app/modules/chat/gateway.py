"""The chat's socket events: send, sync, read, focus/blur and leave."""

from __future__ import annotations

from app.core.errors import ErrorCode
from app.core.socket import Gateway, SocketContext, ws_event, ws_response
from app.modules.chat.broadcasts import ChatEvents
from app.modules.chat.declarations import (
    ACTIVE_ROOMS,
    CHAT_BUCKET,
    CHAT_MESSAGE,
    CHAT_READ,
    CONVERSATION,
    CONVERSATION_DELETED,
    CONVERSATION_UPDATED,
    NOTIFICATION_NEW,
    PARTICIPANT_ADDED,
    PARTICIPANT_REMOVED,
    UNREAD_UPDATE,
)
from app.modules.chat.membership import ConversationBlurred
from app.modules.chat.schemas import (
    ChatReadIn,
    ConversationMuteIn,
    ConversationRefIn,
    ConversationRefOut,
    MuteOut,
    ReadOut,
    SendAck,
    SendIn,
    SyncAck,
    SyncIn,
)
from app.modules.chat.sending import MessageSender
from app.modules.chat.service import ChatService
from app.modules.chat.writer import MessageWriter

ACCESS_ERRORS = (ErrorCode.VALIDATION_ERROR, ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED)


class ChatGateway(Gateway):
    emits = (
        CHAT_MESSAGE,
        CHAT_READ,
        UNREAD_UPDATE,
        CONVERSATION_UPDATED,
        CONVERSATION_DELETED,
        PARTICIPANT_ADDED,
        PARTICIPANT_REMOVED,
        NOTIFICATION_NEW,
    )

    @ws_event(
        "chat:send",
        "Send a text message. The ack carries the stored message with its `seq`; the other sockets "
        "of the conversation get `chat:message`. Re-sending the same `client_msg_id` returns the "
        "stored message and sends nothing again. Any failure asks the client to roll back.",
        category="chat",
        room_required="group:{conversationId}",
        examples=[{"conversation_id": CONVERSATION, "body": "Hello @bob", "client_msg_id": "c-1732265000-1"}],
        errors=[*ACCESS_ERRORS, ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.INTERNAL],
        rate_limit=CHAT_BUCKET,
        optimistic=True,
    )
    @ws_response("chat:send", SendAck)
    async def send(self, client: SocketContext, payload: SendIn, sender: MessageSender) -> SendAck:
        sent = await sender.send(
            client.identity, payload.conversation_id, payload.body, payload.client_msg_id, skip_sid=client.sid
        )
        return SendAck(sent.message)

    @ws_event(
        "chat:sync",
        "Catch up after a reconnect or a seq jump: send the last seq you hold for each conversation, "
        "get what came after (at most `limit` each). `recovered: false` with `has_more: true` means "
        "page the rest over REST (`GET /api/conversations/{id}/messages?after_seq=`). A conversation "
        "you may not sync (gone, or not yours) gets an `error` (`NOT_FOUND`, `FORBIDDEN`) in its own "
        "entry and the others are synced; a cursor past a conversation's last seq fails the call "
        "(`VALIDATION_ERROR` naming it).",
        category="chat",
        examples=[{"conversations": [{"conversation_id": CONVERSATION, "after_seq": 40}], "limit": 50}],
        errors=list(ACCESS_ERRORS),
    )
    @ws_response("chat:sync", SyncAck)
    async def sync(self, client: SocketContext, payload: SyncIn, chat: ChatService) -> SyncAck:
        synced = await chat.sync(client.user_id, payload.conversations, payload.limit)
        for conversation in synced:
            self.ctx.metrics.sync_recoveries.labels(str(conversation.recovered).lower()).inc()
        return SyncAck(synced)

    @ws_event(
        "chat:read",
        "Mark a conversation read up to `last_read_seq` (never backwards, never past its last seq). "
        "Focused viewers get `chat:read`; your other sockets get `unread:update`.",
        category="chat",
        examples=[{"conversation_id": CONVERSATION, "last_read_seq": 42}],
        errors=list(ACCESS_ERRORS),
    )
    @ws_response("chat:read", ReadOut)
    async def read(
        self, client: SocketContext, payload: ChatReadIn, chat: ChatService, events: ChatEvents
    ) -> ReadOut:
        return await chat.mark_read(
            client.user_id, payload.conversation_id, payload.last_read_seq, events=events
        )

    @ws_event(
        "conversation:focus",
        "You are looking at this conversation: join `active:{conversationId}` to see read cursors "
        "and typing.",
        category="conversations",
        examples=[{"conversation_id": CONVERSATION}],
        errors=list(ACCESS_ERRORS),
    )
    @ws_response("conversation:focus", ConversationRefOut)
    async def focus(
        self, client: SocketContext, payload: ConversationRefIn, chat: ChatService
    ) -> ConversationRefOut:
        await chat.require_participant(payload.conversation_id, client.user_id)
        await client.join(ACTIVE_ROOMS.room(str(payload.conversation_id)))
        return ConversationRefOut(str(payload.conversation_id))

    @ws_event(
        "conversation:blur",
        "You stopped looking at this conversation: leave `active:{conversationId}`; your typing indicator "
        "there ends (`chat:typing` false to the others).",
        category="conversations",
        examples=[{"conversation_id": CONVERSATION}],
        errors=[ErrorCode.VALIDATION_ERROR, ErrorCode.RATE_LIMITED],
    )
    @ws_response("conversation:blur", ConversationRefOut)
    async def blur(self, client: SocketContext, payload: ConversationRefIn) -> ConversationRefOut:
        conversation_id = str(payload.conversation_id)
        await client.leave(ACTIVE_ROOMS.room(conversation_id))
        await client.ctx.events.publish(ConversationBlurred(client.sid, str(client.user_id), conversation_id))
        return ConversationRefOut(conversation_id)

    @ws_event(
        "conversation:mute",
        "Mute (`muted: true`) or unmute a conversation for yourself, a group you were added to or a "
        "direct one. While muted: your sockets leave its `group:` room and do not join it on connect, "
        "so its messages no longer arrive live (`chat:sync`, REST and `room:join group:{id}` still "
        "work, e.g. while you look at it); a mention of you makes no notification; its unread "
        "messages leave your totals (`unread:update`, `session:ready`). Your sockets get "
        "`unread:update` with the new total. `GET /api/conversations` shows `muted`.",
        category="conversations",
        examples=[{"conversation_id": CONVERSATION, "muted": True}],
        errors=[*ACCESS_ERRORS, ErrorCode.CONFLICT],
    )
    @ws_response("conversation:mute", MuteOut)
    async def mute(
        self, client: SocketContext, payload: ConversationMuteIn, chat: ChatService, events: ChatEvents
    ) -> MuteOut:
        return await chat.set_muted(client.user_id, payload.conversation_id, payload.muted, events=events)

    @ws_event(
        "conversation:leave",
        "Leave a group: you stop being a participant, the others get a '… left' `chat:message` and "
        "`conversation:participant_removed`, and all your sockets leave its rooms.",
        category="conversations",
        examples=[{"conversation_id": CONVERSATION}],
        errors=[*ACCESS_ERRORS, ErrorCode.INTERNAL],
    )
    @ws_response("conversation:leave", ConversationRefOut)
    async def leave(
        self,
        client: SocketContext,
        payload: ConversationRefIn,
        chat: ChatService,
        writer: MessageWriter,
        events: ChatEvents,
    ) -> ConversationRefOut:
        await chat.leave(client.identity, payload.conversation_id, writer=writer, events=events)
        return ConversationRefOut(str(payload.conversation_id))
