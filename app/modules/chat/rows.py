"""Pure pieces of the chat's queries: row shapes, outcomes, statements built once, text rules, cursors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from advanced_alchemy.types import GUID
from sqlalchemy import String, Table, bindparam, column, table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core import text
from app.core.db import utc_now
from app.core.errors import validation_error
from app.core.types import utc_moment
from app.modules.chat.models import BODY_MAX, Conversation, Message, Participant
from app.modules.chat.schemas import (
    ConversationOut,
    MessageOut,
    NotificationOut,
    ParticipantOut,
    ReadOut,
)

USERS = table(
    "users",
    column("id", GUID(length=16)),
    column("username", String()),
    column("display_name", String()),
)
"""The accounts module's users, read here for mentions and names only."""

MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.-]{3,32})")
MENTIONS_PER_MESSAGE_MAX = 20
NOTIFICATION_BODY_MAX = 200
LIKE_ESCAPE = "\\"
MANAGERS = ("owner", "admin")


@dataclass(frozen=True, slots=True)
class Mention:
    user_id: str
    notification: NotificationOut


@dataclass(frozen=True, slots=True)
class Sent:
    """A send's outcome; `stored` is False for a re-send, which must broadcast nothing."""

    message: MessageOut
    stored: bool
    mentions: list[Mention] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReadState:
    """A read cursor that moved, with the reader's unread total across all conversations."""

    read: ReadOut
    total: int


@dataclass(frozen=True, slots=True)
class Removal:
    conversation_id: str
    user_id: str
    by: str
    system_message: MessageOut
    new_owner: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    conversation: ConversationOut
    created: bool


def check_body(body: str) -> None:
    """The `Body` rules, for a body that did not come through a payload schema."""
    text.check(body, text.MULTI_LINE, "body")
    if len(body) > BODY_MAX:
        raise validation_error("body", f"must be at most {BODY_MAX} characters")


def mentioned_names(body: str) -> list[str]:
    """Lower-cased usernames written as `@name`, in order, without repeats (trailing `.`/`-` dropped)."""
    if "@" not in body:  # most messages: one scan in C instead of the pattern's
        return []
    names: dict[str, None] = {}
    for raw in MENTION.findall(body):
        name = raw.rstrip(".-").lower()
        if len(name) >= 3:
            names[name] = None
    return list(names)[:MENTIONS_PER_MESSAGE_MAX]


def like_pattern(query: str) -> str:
    """`%query%` with `%`, `_` and the escape character taken literally."""
    escaped = query.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def message_out(row: Any) -> MessageOut:
    return message_of(
        (
            row.id,
            row.conversation_id,
            row.seq,
            row.sender_id,
            row.kind,
            row.body,
            row.client_msg_id,
            row.created_at,
        )
    )


def message_of(values: Sequence[Any]) -> MessageOut:
    """The message of a row in `MESSAGE_COLUMNS` order (a SQLAlchemy row or a driver's record)."""
    id_, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at = values
    return MessageOut(
        id=str(id_),
        conversation_id=str(conversation_id),
        seq=seq,
        sender_id=str(sender_id) if sender_id is not None else None,
        kind=kind,
        body=body,
        client_msg_id=client_msg_id,
        created_at=created_at,
    )


def participant_out(participant: Participant) -> ParticipantOut:
    return ParticipantOut(
        user_id=str(participant.user_id),
        role=participant.role,  # type: ignore[arg-type]
        last_read_seq=participant.last_read_seq,
    )


def conversation_out(conversation: Conversation, participants: Sequence[Participant]) -> ConversationOut:
    return ConversationOut(
        id=str(conversation.id),
        kind=conversation.kind,  # type: ignore[arg-type]
        title=conversation.title,
        created_by=str(conversation.created_by) if conversation.created_by is not None else None,
        last_seq=conversation.last_seq,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        participants=[participant_out(p) for p in participants],
    )


def encode_cursor(updated_at: dt.datetime, conversation_id: uuid.UUID) -> str:
    raw = f"{updated_at.isoformat()}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, key = raw.partition("|")
        updated_at, conversation_id = dt.datetime.fromisoformat(stamp), uuid.UUID(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        updated_at = None
    if updated_at is None or updated_at.tzinfo is None:
        raise validation_error("cursor", "is not a cursor this server gave out")
    return utc_moment(updated_at, "cursor"), conversation_id


MESSAGE_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.seq,
    Message.sender_id,
    Message.kind,
    Message.body,
    Message.client_msg_id,
    Message.created_at,
)

# The tables a message is written to, and the two statements of a system message, built once on the
# tables (not the mapped classes): an ORM statement is rebuilt, keyed and routed through the ORM's
# bulk path on every call, which cost more than the database round trips themselves.
CONVERSATIONS = cast("Table", Conversation.__table__)
PARTICIPANTS = cast("Table", Participant.__table__)
MESSAGES = cast("Table", Message.__table__)
TAKE_SEQ = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id == bindparam("conversation_id"))
    .values(last_seq=CONVERSATIONS.c.last_seq + 1, updated_at=utc_now())
    .returning(CONVERSATIONS.c.last_seq)
)


def message_upsert(insert_into: Any) -> Any:
    """Insert a message (values given at execution, or by `insert_into`); on a repeated client id,
    return the stored one."""
    statement = insert_into(MESSAGES)
    return statement.on_conflict_do_update(
        index_elements=["conversation_id", "sender_id", "client_msg_id"],
        set_={"client_msg_id": statement.excluded.client_msg_id},
    ).returning(*(MESSAGES.c[column.key] for column in MESSAGE_COLUMNS))


UPSERT_MESSAGE = {"postgresql": message_upsert(pg_insert), "sqlite": message_upsert(sqlite_insert)}
