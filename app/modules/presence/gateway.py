"""Socket events of presence (`presence:subscribe`, `presence:unsubscribe`) and typing (`chat:typing`)."""

from __future__ import annotations

from app.core.errors import AppError, ErrorCode
from app.core.socket import Gateway, SocketContext, ws_event, ws_response
from app.modules.presence.declarations import (
    CHAT_TYPING,
    EXAMPLE_CONVERSATION,
    EXAMPLE_USER,
    PRESENCE_ROOMS,
    TYPING_BUCKET,
    USER_STATUS,
)
from app.modules.presence.presence import Presence, membership
from app.modules.presence.schemas import (
    PresenceStatuses,
    PresenceSubscribeIn,
    TypingAck,
    TypingIn,
)
from app.modules.presence.service import LastSeenService
from app.modules.presence.typing import TypingIndicators


class PresenceGateway(Gateway):
    emits = (USER_STATUS,)

    @ws_event(
        "presence:subscribe",
        "Follow the online status of up to 100 users: joins `presence:{id}` for each user you share a "
        "conversation with (and yourself) and answers their current statuses. Other and unknown ids "
        "are left out of the answer, never an error.",
        category="presence",
        examples=[{"user_ids": [EXAMPLE_USER]}],
        errors=[ErrorCode.VALIDATION_ERROR, ErrorCode.RATE_LIMITED],
    )
    @ws_response("presence:subscribe", PresenceStatuses)
    async def subscribe(
        self, client: SocketContext, payload: PresenceSubscribeIn, presence: Presence, users: LastSeenService
    ) -> PresenceStatuses:
        visible = await presence.visible_to(client.user_id, [str(user_id) for user_id in payload.user_ids])
        statuses = await presence.statuses(users, visible)
        await client.join(*(PRESENCE_ROOMS.room(status.user_id) for status in statuses))
        return PresenceStatuses(statuses)

    @ws_event(
        "presence:unsubscribe",
        "Stop following these users' online status (ids you do not follow are ignored). "
        "Answers the statuses of the users you may see, as they are now.",
        category="presence",
        examples=[{"user_ids": [EXAMPLE_USER]}],
        errors=[ErrorCode.VALIDATION_ERROR],
    )
    @ws_response("presence:unsubscribe", PresenceStatuses)
    async def unsubscribe(
        self, client: SocketContext, payload: PresenceSubscribeIn, presence: Presence, users: LastSeenService
    ) -> PresenceStatuses:
        user_ids = list(dict.fromkeys(str(user_id) for user_id in payload.user_ids))
        for user_id in user_ids:
            await client.leave(PRESENCE_ROOMS.room(user_id))
        visible = await presence.visible_to(client.user_id, user_ids)
        return PresenceStatuses(await presence.statuses(users, visible))


class TypingGateway(Gateway):
    emits = (CHAT_TYPING,)

    @ws_event(
        "chat:typing",
        "Tell the conversation's focused viewers (`active:{id}`) you started or stopped typing. Repeat "
        "`typing: true` every few seconds while typing: repeats inside the throttle window are acked but "
        "not re-broadcast, and an indicator not refreshed within TYPING_TTL ends with a server-sent "
        "`typing: false`. Disconnecting stops it too.",
        category="chat",
        examples=[{"conversation_id": EXAMPLE_CONVERSATION, "typing": True}],
        errors=[ErrorCode.VALIDATION_ERROR, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED],
        rate_limit=TYPING_BUCKET,
    )
    @ws_response("chat:typing", TypingAck)
    async def typing(
        self, client: SocketContext, payload: TypingIn, indicators: TypingIndicators
    ) -> TypingAck:
        conversation_id = str(payload.conversation_id)
        if not await membership(self.ctx).is_participant(conversation_id, str(client.user_id)):
            raise AppError(ErrorCode.FORBIDDEN, "You are not a participant of this conversation")
        if payload.typing:
            await indicators.start(client.sid, conversation_id, str(client.user_id))
        else:
            await indicators.stop(client.sid, conversation_id, str(client.user_id))
        return TypingAck()
