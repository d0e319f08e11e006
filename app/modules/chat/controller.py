"""`/api/conversations`: conversations, participants, history, search and read state."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.core.context import AppContext
from app.core.errors import validation_error
from app.core.http.envelope import Envelope, ok
from app.core.security.identity import Identity
from app.core.text import SINGLE_LINE
from app.modules.chat.broadcasts import ChatEvents
from app.modules.chat.schemas import (
    MAX_SEQ,
    MESSAGES_LIMIT_DEFAULT,
    MESSAGES_LIMIT_MAX,
    SEARCH_LIMIT_DEFAULT,
    SEARCH_LIMIT_MAX,
    SEARCH_QUERY_MAX,
    AddParticipantsIn,
    ConversationOut,
    ConversationPage,
    ConversationRefOut,
    CreateConversationIn,
    MessageOut,
    MessagePage,
    MuteIn,
    MuteOut,
    ParticipantChange,
    PostMessageIn,
    ReadIn,
    ReadOut,
    UnreadSummary,
    UpdateConversationIn,
)
from app.modules.chat.sending import MessageSender
from app.modules.chat.service import ChatService
from app.modules.chat.writer import MessageWriter

PAGE_DEFAULT = 20
PAGE_MAX = 100

Limit = Annotated[int, Parameter(ge=1, le=MESSAGES_LIMIT_MAX, description="at most 200")]
SeqCursor = Annotated[int | None, Parameter(ge=0, le=MAX_SEQ)]


class ConversationController(Controller):
    path = "/api/conversations"
    tags = ["conversations"]

    @post("/", status_code=HTTP_201_CREATED, summary="Create a conversation (direct or group)")
    async def create(
        self,
        data: CreateConversationIn,
        identity: Identity,
        chat_service: ChatService,
        chat_events: ChatEvents,
    ) -> Response[Envelope[ConversationOut]]:
        """Create a group (you become its owner) or open the direct conversation with one user."""
        created = await chat_service.open_conversation(
            identity.user_id, data.kind, data.title, data.participant_ids, events=chat_events
        )
        if created.created:
            return Response(ok(created.conversation, "Created"), status_code=HTTP_201_CREATED)
        return Response(ok(created.conversation, "Already exists"), status_code=HTTP_200_OK)

    @get("/", summary="Your conversations, most recent first")
    async def list_conversations(
        self,
        identity: Identity,
        chat_service: ChatService,
        limit: Annotated[int, Parameter(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> Envelope[ConversationPage]:
        """Your conversations, most recently active first; pass `next_cursor` back for the next page."""
        return ok(await chat_service.list_for(identity.user_id, limit, cursor))

    @get("/unread-count", summary="Unread counts of your conversations")
    async def unread_count(
        self, identity: Identity, chat_service: ChatService, app_ctx: AppContext
    ) -> Envelope[UnreadSummary]:
        """As in `session:ready`: the most recently active conversations, the total of all."""
        window = app_ctx.settings.socket.ready_conversations
        return ok(await chat_service.unread_summary(identity.user_id, window))

    @get("/{conversation_id:uuid}", summary="One conversation")
    async def get_conversation(
        self, conversation_id: uuid.UUID, identity: Identity, chat_service: ChatService
    ) -> Envelope[ConversationOut]:
        return ok(await chat_service.conversation(identity.user_id, conversation_id))

    @patch("/{conversation_id:uuid}", summary="Rename a group")
    async def rename(
        self,
        conversation_id: uuid.UUID,
        data: UpdateConversationIn,
        identity: Identity,
        chat_service: ChatService,
        chat_events: ChatEvents,
    ) -> Envelope[ConversationOut]:
        return ok(
            await chat_service.rename(identity.user_id, conversation_id, data.title, events=chat_events)
        )

    @delete("/{conversation_id:uuid}", status_code=HTTP_200_OK, summary="Delete a conversation (owner)")
    async def delete_conversation(
        self,
        conversation_id: uuid.UUID,
        identity: Identity,
        chat_service: ChatService,
        chat_events: ChatEvents,
    ) -> Envelope[ConversationRefOut]:
        await chat_service.delete_conversation(identity.user_id, conversation_id, events=chat_events)
        return ok(ConversationRefOut(str(conversation_id)), "Deleted")

    @post("/{conversation_id:uuid}/participants", status_code=HTTP_200_OK, summary="Add participants")
    async def add_participants(
        self,
        conversation_id: uuid.UUID,
        data: AddParticipantsIn,
        identity: Identity,
        chat_service: ChatService,
        chat_events: ChatEvents,
    ) -> Envelope[ConversationOut]:
        return ok(
            await chat_service.add_participants(
                identity.user_id, conversation_id, data.user_ids, events=chat_events
            )
        )

    @delete(
        "/{conversation_id:uuid}/participants/{user_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Remove a participant",
    )
    async def remove_participant(
        self,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        identity: Identity,
        chat_service: ChatService,
        chat_writer: MessageWriter,
        chat_events: ChatEvents,
    ) -> Envelope[ParticipantChange]:
        removal = await chat_service.remove_participant(
            identity.user_id, conversation_id, user_id, writer=chat_writer, events=chat_events
        )
        change = ParticipantChange(removal.conversation_id, removal.user_id, removal.by, removal.new_owner)
        return ok(change, "Removed")

    @put("/{conversation_id:uuid}/mute", summary="Mute or unmute a conversation")
    async def mute(
        self,
        conversation_id: uuid.UUID,
        data: MuteIn,
        identity: Identity,
        chat_service: ChatService,
        chat_events: ChatEvents,
    ) -> Envelope[MuteOut]:
        """Mute (`true`) or unmute a conversation for yourself; see `conversation:mute` for what it means."""
        muted = await chat_service.set_muted(
            identity.user_id, conversation_id, data.muted, events=chat_events
        )
        return ok(muted)

    @post("/{conversation_id:uuid}/leave", status_code=HTTP_200_OK, summary="Leave a conversation")
    async def leave(
        self,
        conversation_id: uuid.UUID,
        identity: Identity,
        chat_service: ChatService,
        chat_writer: MessageWriter,
        chat_events: ChatEvents,
    ) -> Envelope[ConversationRefOut]:
        await chat_service.leave(identity, conversation_id, writer=chat_writer, events=chat_events)
        return ok(ConversationRefOut(str(conversation_id)), "Left")

    @get("/{conversation_id:uuid}/messages", summary="Message history")
    async def messages(
        self,
        conversation_id: uuid.UUID,
        identity: Identity,
        chat_service: ChatService,
        limit: Limit = MESSAGES_LIMIT_DEFAULT,
        before_seq: SeqCursor = None,
        after_seq: SeqCursor = None,
    ) -> Envelope[MessagePage]:
        """History in ascending seq: after `after_seq`, before `before_seq`, or else the latest."""
        return ok(
            await chat_service.messages(identity.user_id, conversation_id, limit, before_seq, after_seq)
        )

    @post("/{conversation_id:uuid}/messages", status_code=HTTP_201_CREATED, summary="Send a message")
    async def send(
        self,
        conversation_id: uuid.UUID,
        data: PostMessageIn,
        identity: Identity,
        chat_sender: MessageSender,
    ) -> Response[Envelope[MessageOut]]:
        """Send as over the socket, with the same events; a re-sent `client_msg_id` answers 200."""
        sent = await chat_sender.send(
            identity, conversation_id, data.body, data.client_msg_id or uuid.uuid4().hex
        )
        if sent.stored:
            return Response(ok(sent.message, "Sent"), status_code=HTTP_201_CREATED)
        return Response(ok(sent.message, "Already sent"), status_code=HTTP_200_OK)

    @get("/{conversation_id:uuid}/messages/search", summary="Search messages")
    async def search(
        self,
        conversation_id: uuid.UUID,
        identity: Identity,
        chat_service: ChatService,
        q: Annotated[str, Parameter(min_length=1, max_length=SEARCH_QUERY_MAX, pattern=SINGLE_LINE)],
        limit: Annotated[int, Parameter(ge=1, le=SEARCH_LIMIT_MAX)] = SEARCH_LIMIT_DEFAULT,
    ) -> Envelope[MessagePage]:
        """Messages containing `q` (any script, case-insensitive; `%` and `_` are literal), newest first."""
        if not q.strip():
            raise validation_error("q", "must not be only whitespace")
        return ok(await chat_service.search(identity.user_id, conversation_id, q, limit))

    @put("/{conversation_id:uuid}/read", summary="Mark read up to a seq")
    async def read(
        self,
        conversation_id: uuid.UUID,
        data: ReadIn,
        identity: Identity,
        chat_service: ChatService,
        chat_events: ChatEvents,
    ) -> Envelope[ReadOut]:
        return ok(
            await chat_service.mark_read(
                identity.user_id, conversation_id, data.last_read_seq, events=chat_events
            )
        )
