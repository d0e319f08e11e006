"""What the chat module tells sockets after a change is committed, the same for REST and socket paths."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.core.context import AppContext
from app.core.socket.hub import SocketHub
from app.core.socket.rooms import USER_ROOMS
from app.modules.chat.declarations import (
    ACTIVE_ROOMS,
    CHAT_MESSAGE,
    CHAT_READ,
    CONVERSATION_DELETED,
    CONVERSATION_UPDATED,
    GROUP_ROOMS,
    NOTIFICATION_NEW,
    PARTICIPANT_ADDED,
    PARTICIPANT_REMOVED,
    UNREAD_UPDATE,
)
from app.modules.chat.membership import MembershipEnded
from app.modules.chat.schemas import (
    ChatMessageEvent,
    ChatReadEvent,
    ConversationDeletedEvent,
    ConversationOut,
    ConversationUpdatedEvent,
    MuteOut,
    ParticipantChange,
    UnreadUpdate,
)

if TYPE_CHECKING:
    from app.modules.chat.rows import ReadState, Removal, Sent

logger = logging.getLogger(__name__)


class ChatEvents:
    """Emits the chat's server events and moves sockets between rooms on every node."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @property
    def hub(self) -> SocketHub:
        return self.ctx.hub

    async def message_sent(self, sent: Sent, *, skip_sid: str | None) -> None:
        """`chat:message` to the conversation (not the sending socket), `notification:new` to mentioned."""
        self.ctx.metrics.messages_stored.inc()
        room = GROUP_ROOMS.room(sent.message.conversation_id)
        await self.hub.emit(CHAT_MESSAGE, ChatMessageEvent(sent.message), room=room, skip_sid=skip_sid)
        for mention in sent.mentions:
            await self.hub.emit(NOTIFICATION_NEW, mention.notification, room=USER_ROOMS.room(mention.user_id))

    async def read_advanced(self, user_id: str, state: ReadState) -> None:
        """The focused viewers see the cursor move; the reader's other tabs get the new unread counts."""
        read = state.read
        await self.hub.emit(
            CHAT_READ,
            ChatReadEvent(read.conversation_id, user_id, read.last_read_seq),
            room=ACTIVE_ROOMS.room(read.conversation_id),
        )
        await self.hub.emit(
            UNREAD_UPDATE,
            UnreadUpdate(read.conversation_id, read.unread, state.total),
            room=USER_ROOMS.room(user_id),
        )

    async def conversation_created(self, conversation: ConversationOut) -> None:
        """The participants' sockets join the room; all hear of it, through their user rooms too (a
        socket at its room limit did not join)."""
        group = GROUP_ROOMS.room(conversation.id)
        members = [USER_ROOMS.room(participant.user_id) for participant in conversation.participants]
        for member in members:
            await self.hub.sockets_join(member, group)
        await self.hub.emit(
            CONVERSATION_UPDATED, ConversationUpdatedEvent(conversation), room=[group, *members]
        )

    async def conversation_updated(self, conversation: ConversationOut) -> None:
        await self.hub.emit(
            CONVERSATION_UPDATED,
            ConversationUpdatedEvent(conversation),
            room=GROUP_ROOMS.room(conversation.id),
        )

    async def conversation_deleted(self, conversation_id: str, member_ids: list[str]) -> None:
        """Tell the members, then their sockets leave the conversation's rooms everywhere."""
        logger.info("conversation %s deleted", conversation_id)
        group = GROUP_ROOMS.room(conversation_id)
        await self.hub.emit(CONVERSATION_DELETED, ConversationDeletedEvent(conversation_id), room=group)
        await self._membership_ended(conversation_id, member_ids)

    async def participants_added(self, conversation_id: str, user_ids: list[str], *, by: str) -> None:
        """The added users' sockets join the conversation first, so the event reaches them too."""
        group = GROUP_ROOMS.room(conversation_id)
        if user_ids:
            logger.info("user %s added %s to conversation %s", by, ", ".join(user_ids), conversation_id)
        for user_id in user_ids:
            await self.hub.sockets_join(USER_ROOMS.room(user_id), group)
            # To the user's room too: a socket at its room limit did not join the group.
            await self.hub.emit(
                PARTICIPANT_ADDED,
                ParticipantChange(conversation_id, user_id, by),
                room=[group, USER_ROOMS.room(user_id)],
            )

    async def mute_changed(self, user_id: str, mute: MuteOut, unread: UnreadUpdate) -> None:
        """A muted conversation stops reaching the user's sockets live; unmuted, it does again. The
        user's sockets get the unread total that now leaves (or counts) the conversation."""
        member, group = USER_ROOMS.room(user_id), GROUP_ROOMS.room(mute.conversation_id)
        logger.info("user %s %s conversation %s", user_id, "muted" if mute.muted else "unmuted", group)
        if mute.muted:
            await self.hub.sockets_leave(member, group)
        else:
            await self.hub.sockets_join(member, group)
        await self.hub.emit(UNREAD_UPDATE, unread, room=member)

    async def participant_removed(self, removal: Removal) -> None:
        """The room (the leaver's sockets still in it) hears of it; then the leaver's sockets leave."""
        logger.info(
            "user %s removed from conversation %s by %s", removal.user_id, removal.conversation_id, removal.by
        )
        self.ctx.metrics.messages_stored.inc()
        group = GROUP_ROOMS.room(removal.conversation_id)
        await self.hub.emit(CHAT_MESSAGE, ChatMessageEvent(removal.system_message), room=group)
        await self.hub.emit(
            PARTICIPANT_REMOVED,
            ParticipantChange(removal.conversation_id, removal.user_id, removal.by, removal.new_owner),
            room=group,
        )
        await self._membership_ended(removal.conversation_id, [removal.user_id])

    async def _membership_ended(self, conversation_id: str, user_ids: list[str]) -> None:
        """Every socket of these users leaves the conversation's rooms on every node, found by identity
        whatever rooms it holds; then modules end what the membership allowed (presence follows)."""
        await self.hub.users_leave(
            user_ids, [GROUP_ROOMS.room(conversation_id), ACTIVE_ROOMS.room(conversation_id)]
        )
        await self.ctx.events.publish(MembershipEnded(conversation_id, tuple(user_ids)))
