"""Wire shapes of the chat module: REST bodies, socket payloads and acks, server events."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from app.core.text import MULTI_LINE, TRIMMED, text
from app.core.types import UtcDateTime
from app.modules.chat.models import BODY_MAX, CLIENT_MSG_ID_MAX, TITLE_MAX

MAX_SEQ = 2**53 - 1
"""The largest seq a JavaScript client can hold exactly; any cursor beyond it is nonsense."""
MESSAGES_LIMIT_DEFAULT = 50
MESSAGES_LIMIT_MAX = 200
SYNC_CONVERSATIONS_MAX = 100
SEARCH_LIMIT_DEFAULT = 20
SEARCH_LIMIT_MAX = 100
SEARCH_QUERY_MAX = 100
PARTICIPANTS_PER_CALL_MAX = 100

ConversationKind = Annotated[Literal["direct", "group"], msgspec.Meta(title="ConversationKind")]
Role = Annotated[Literal["owner", "admin", "member"], msgspec.Meta(title="ParticipantRole")]
MessageKind = Annotated[Literal["text", "system"], msgspec.Meta(title="MessageKind")]

Body = Annotated[str, text(MULTI_LINE, max_length=BODY_MAX, description="`@username` mentions")]
ClientMsgId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=CLIENT_MSG_ID_MAX,
        pattern=r"^[A-Za-z0-9_.:-]+(?![\s\S])",
        description="chosen by the client (e.g. a UUID); a re-send with the same id is not stored twice",
    ),
]
Title = Annotated[str, text(TRIMMED, max_length=TITLE_MAX)]
Cursor = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ, description="a seq the client already has (0: none)")]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
UserIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=PARTICIPANTS_PER_CALL_MAX)]


class MessageOut(msgspec.Struct):
    id: str
    conversation_id: str
    seq: int
    sender_id: str | None
    kind: MessageKind
    body: str
    client_msg_id: str | None
    created_at: UtcDateTime


class ParticipantOut(msgspec.Struct):
    user_id: str
    role: Role
    last_read_seq: int


class ConversationOut(msgspec.Struct):
    id: str
    kind: ConversationKind
    title: str | None
    created_by: str | None
    last_seq: int
    created_at: UtcDateTime
    updated_at: UtcDateTime
    participants: list[ParticipantOut]


class ConversationSummaryOut(ConversationOut):
    """A conversation as listed: with its latest message, the caller's unread count and mute."""

    last_message: MessageOut | None
    unread: int
    muted: bool


class ConversationPage(msgspec.Struct):
    items: list[ConversationSummaryOut]
    next_cursor: str | None


class MessagePage(msgspec.Struct):
    items: list[MessageOut]
    has_more: bool


class UnreadConversation(msgspec.Struct):
    conversation_id: str
    unread: int
    last_seq: int
    last_read_seq: int
    mentions: int
    last_message: MessageOut | None


class UnreadSummary(msgspec.Struct):
    """`session:ready.unread` and `GET /conversations/unread-count`.

    `conversations` lists those with unread messages among the SESSION_READY_CONVERSATIONS most
    recently active ones (muted ones aside): the conversations whose `group:` rooms a socket joins on
    connect. `total` counts the unread messages of every conversation that is not muted.
    `more: true` says there are older conversations: page them with `GET /api/conversations?cursor=`
    `next_cursor`, and follow one live with `room:join group:{id}`. `notifications` counts the
    unread notifications (`GET /api/notifications`).
    """

    conversations: list[UnreadConversation]
    total: int
    notifications: int
    more: bool
    next_cursor: str | None


class NotificationOut(msgspec.Struct):
    id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: UtcDateTime
    read_at: UtcDateTime | None = None


class NotificationPage(msgspec.Struct):
    items: list[NotificationOut]
    next_cursor: str | None


class MarkNotificationsReadIn(msgspec.Struct, forbid_unknown_fields=True):
    up_to_id: uuid.UUID = msgspec.field()
    """This notification and every older one of yours are marked read."""


class NotificationsRead(msgspec.Struct):
    marked: int
    unread: int


class CreateConversationIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: ConversationKind
    participant_ids: UserIds
    title: Title | None = None


class UpdateConversationIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title


class AddParticipantsIn(msgspec.Struct, forbid_unknown_fields=True):
    user_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=PARTICIPANTS_PER_CALL_MAX)]


class PostMessageIn(msgspec.Struct):
    """REST send; unknown fields (a `sender_id`, a `seq`) are ignored: the server decides those."""

    body: Body
    client_msg_id: ClientMsgId | None = None


class ReadIn(msgspec.Struct, forbid_unknown_fields=True):
    last_read_seq: Seq


class ReadOut(msgspec.Struct):
    conversation_id: str
    last_read_seq: int
    unread: int


class SendIn(msgspec.Struct):
    """`chat:send`; unknown fields (a `sender_id`, a `seq`) are ignored: the server decides those."""

    conversation_id: uuid.UUID
    body: Body
    client_msg_id: ClientMsgId


class SendAck(msgspec.Struct):
    message: MessageOut


class SyncCursor(msgspec.Struct, forbid_unknown_fields=True):
    conversation_id: uuid.UUID
    after_seq: Cursor


class SyncIn(msgspec.Struct, forbid_unknown_fields=True):
    conversations: Annotated[list[SyncCursor], msgspec.Meta(min_length=1, max_length=SYNC_CONVERSATIONS_MAX)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=MESSAGES_LIMIT_MAX)] = MESSAGES_LIMIT_DEFAULT


class SyncError(msgspec.Struct):
    code: Literal["NOT_FOUND", "FORBIDDEN"]
    message: str


class SyncedConversation(msgspec.Struct):
    """One conversation of a sync. With `error` set, you may not sync that conversation (there is no
    such conversation, or it is not yours): `messages` is empty, the rest zero or false.

    `last_read_seq` is the caller's read position: a client meeting a conversation for the first
    time starts there (bounded by its backlog), so nothing unread is skipped however the sync's
    answer and live messages interleave."""

    conversation_id: str
    messages: list[MessageOut]
    last_seq: int
    recovered: bool
    has_more: bool
    last_read_seq: int = 0
    error: SyncError | None = None


class SyncAck(msgspec.Struct):
    conversations: list[SyncedConversation]


class ChatReadIn(msgspec.Struct, forbid_unknown_fields=True):
    conversation_id: uuid.UUID
    last_read_seq: Seq


class ConversationRefIn(msgspec.Struct, forbid_unknown_fields=True):
    conversation_id: uuid.UUID


class ConversationRefOut(msgspec.Struct):
    conversation_id: str


class MuteIn(msgspec.Struct, forbid_unknown_fields=True):
    muted: bool


class ConversationMuteIn(msgspec.Struct, forbid_unknown_fields=True):
    conversation_id: uuid.UUID
    muted: bool


class MuteOut(msgspec.Struct):
    conversation_id: str
    muted: bool


class ChatMessageEvent(msgspec.Struct):
    message: MessageOut


class ChatReadEvent(msgspec.Struct):
    conversation_id: str
    user_id: str
    last_read_seq: int


class UnreadUpdate(msgspec.Struct):
    conversation_id: str
    unread: int
    total: int


class ConversationUpdatedEvent(msgspec.Struct):
    conversation: ConversationOut


class ConversationDeletedEvent(msgspec.Struct):
    conversation_id: str


class ParticipantChange(msgspec.Struct, omit_defaults=True):
    conversation_id: str
    user_id: str
    by: str
    new_owner: str | None = None
    """Set when the owner left: the participant who owns the group now."""
