"""Sending a text message: the one path of `chat:send` and `POST /conversations/{id}/messages`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, NoReturn

from app.core.errors import AppError, ErrorCode
from app.modules.chat.broadcasts import ChatEvents
from app.modules.chat.rows import Sent, check_body
from app.modules.chat.statements import Draft
from app.modules.chat.store import ChatStore
from app.modules.chat.writer import MessageWriter

if TYPE_CHECKING:
    from app.core.context import AppContext
    from app.core.security.identity import Identity


class MessageSender:
    """Hands each message to the node's `MessageWriter` and, once its batch is committed, tells the
    conversation (`ChatEvents.message_sent`).

    A send needs no session of its own: the writer's statements check that the sender participates.
    Only a refused message opens one, to tell the sender why (NOT_FOUND, FORBIDDEN, or CONFLICT when
    the membership changed back in between).
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.writer = ctx.get(MessageWriter)
        self.events = ctx.get(ChatEvents)

    async def send(
        self,
        sender: Identity,
        conversation_id: uuid.UUID,
        body: str,
        client_msg_id: str,
        *,
        skip_sid: str | None = None,
    ) -> Sent:
        """Store a text message with the next seq; a re-send returns the stored one and changes nothing.

        The events go out (to every socket of the conversation but `skip_sid`) once the message's
        batch is committed; a re-send's outcome is not stored again and sends nothing.
        """
        check_body(body)
        draft = Draft(conversation_id, sender.user_id, body, client_msg_id, sender_name=sender.display_name)
        outcome = await self.writer.write(draft)
        if not isinstance(outcome, Sent):
            await self._explain_refusal(conversation_id, sender.user_id)
        if outcome.stored:
            await self.events.message_sent(outcome, skip_sid=skip_sid)
        return outcome

    async def _explain_refusal(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> NoReturn:
        """Why the writer refused the message, asked in a transaction of its own."""
        async with self.ctx.unit_of_work() as uow:
            await uow.service(ChatStore).require_participant(conversation_id, user_id)
        raise AppError(ErrorCode.CONFLICT, "Your membership changed meanwhile; send again")
