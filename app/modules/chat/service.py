"""The chat domain's queries and transactions, shared by the REST controller and the socket gateway.

Every state change commits before it returns; the caller hands its `ChatEvents` so that the events
go out only after the commit and are the same whichever path made the change.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from advanced_alchemy.types import GUID
from sqlalchemy import (
    JSON,
    String,
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utc_now
from app.core.errors import AppError, ErrorCode, forbidden, not_found, validation_error
from app.modules.chat.models import (
    BODY_MAX,
    Conversation,
    Message,
    Notification,
    Participant,
    direct_key,
)
from app.modules.chat.schemas import (
    ConversationOut,
    ConversationPage,
    ConversationSummaryOut,
    MessageOut,
    MessagePage,
    NotificationOut,
    ParticipantOut,
    ReadOut,
    SyncCursor,
    SyncedConversation,
    UnreadConversation,
    UnreadSummary,
)

if TYPE_CHECKING:
    from app.core.security.identity import Identity
    from app.modules.chat.events import ChatEvents

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


@dataclass(frozen=True, slots=True)
class Created:
    conversation: ConversationOut
    created: bool


def check_body(body: str) -> None:
    """What msgspec's length check cannot say: no NUL byte, not only whitespace."""
    if "\x00" in body:
        raise validation_error("body", "must not contain a NUL character")
    if not body.strip():
        raise validation_error("body", "must not be empty or only whitespace")
    if len(body) > BODY_MAX:
        raise validation_error("body", f"must be at most {BODY_MAX} characters")


def mentioned_names(body: str) -> list[str]:
    """Lower-cased usernames written as `@name`, in order, without repeats (trailing `.`/`-` dropped)."""
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
    return MessageOut(
        id=str(row.id),
        conversation_id=str(row.conversation_id),
        seq=row.seq,
        sender_id=str(row.sender_id) if row.sender_id is not None else None,
        kind=row.kind,
        body=row.body,
        client_msg_id=row.client_msg_id,
        created_at=row.created_at,
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
    return updated_at, conversation_id


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

# The two statements of every send, built once on the tables (not the mapped classes): an ORM
# statement is rebuilt, keyed and routed through the ORM's bulk path on every call, which cost
# more than the database round trips themselves.
CONVERSATIONS = cast("Table", Conversation.__table__)
PARTICIPANTS = cast("Table", Participant.__table__)
MESSAGES = cast("Table", Message.__table__)
TAKE_SEQ = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id == bindparam("conversation_id"))
    .values(last_seq=CONVERSATIONS.c.last_seq + 1, updated_at=utc_now())
    .returning(CONVERSATIONS.c.last_seq)
)
TAKE_SEQ_AS_MEMBER = TAKE_SEQ.where(
    exists().where(
        PARTICIPANTS.c.conversation_id == bindparam("conversation_id"),
        PARTICIPANTS.c.user_id == bindparam("member"),
    )
)


def _message_upsert(insert_into: Any) -> Any:
    """Insert a message (values given at execution); on a repeated client id, return the stored one."""
    statement = insert_into(MESSAGES)
    return statement.on_conflict_do_update(
        index_elements=["conversation_id", "sender_id", "client_msg_id"],
        set_={"client_msg_id": statement.excluded.client_msg_id},
    ).returning(*(MESSAGES.c[column.key] for column in MESSAGE_COLUMNS))


UPSERT_MESSAGE = {"postgresql": _message_upsert(pg_insert), "sqlite": _message_upsert(sqlite_insert)}


class ChatService(SQLAlchemyAsyncRepositoryService[Conversation]):
    class Repo(SQLAlchemyAsyncRepository[Conversation]):
        model_type = Conversation

    repository_type = Repo

    @property
    def session(self) -> AsyncSession:
        session: AsyncSession = self.repository.session
        return session

    def _insert(self, model: type[Any]) -> Any:
        bind = self.session.bind
        return (
            pg_insert(model)
            if bind is not None and bind.dialect.name == "postgresql"
            else sqlite_insert(model)
        )

    # -- access ---------------------------------------------------------------------------------

    async def _access(
        self, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Conversation, Participant]:
        """The conversation and the caller's participation: NOT_FOUND, or FORBIDDEN for outsiders."""
        statement = (
            select(Conversation, Participant)
            .outerjoin(
                Participant,
                and_(Participant.conversation_id == Conversation.id, Participant.user_id == user_id),
            )
            .where(Conversation.id == conversation_id)
        )
        row = (await self.session.execute(statement)).one_or_none()
        if row is None:
            raise not_found("Conversation")
        if row[1] is None:
            raise forbidden("You are not a participant of this conversation")
        return row[0], row[1]

    async def _recheck_access(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> Conversation:
        """After a guarded write touched nothing: raise why, asked in a fresh transaction.

        Returns the conversation when access is fine after all (it changed in between).
        """
        await self.session.rollback()
        conversation, _ = await self._access(conversation_id, user_id)
        return conversation

    async def is_participant(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        statement = select(
            exists().where(Participant.conversation_id == conversation_id, Participant.user_id == user_id)
        )
        return bool((await self.session.execute(statement)).scalar())

    async def require_participant(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self._access(conversation_id, user_id)

    async def conversation_ids_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        statement = select(Participant.conversation_id).where(Participant.user_id == user_id)
        return list((await self.session.execute(statement)).scalars())

    async def contacts_among(self, user_id: uuid.UUID, candidates: Sequence[uuid.UUID]) -> set[str]:
        mine = select(Participant.conversation_id).where(Participant.user_id == user_id)
        statement = (
            select(Participant.user_id)
            .where(Participant.conversation_id.in_(mine), Participant.user_id.in_(candidates))
            .distinct()
        )
        return {str(uid) for uid in (await self.session.execute(statement)).scalars()}

    # -- sending ------------------------------------------------------------------------------

    async def _next_seq(self, conversation_id: uuid.UUID, member: uuid.UUID | None) -> int | None:
        """Take the conversation's next seq (row-locked until commit); None if `member` is not one."""
        if member is None:
            result = await self.session.execute(TAKE_SEQ, {"conversation_id": conversation_id})
        else:
            params = {"conversation_id": conversation_id, "member": member}
            result = await self.session.execute(TAKE_SEQ_AS_MEMBER, params)
        seq: int | None = result.scalar_one_or_none()
        return seq

    async def _insert_message(self, values: dict[str, Any]) -> Any:
        """Insert a message, or return the one already stored under its (conversation, sender, client id)."""
        bind = self.session.bind
        dialect = bind.dialect.name if bind is not None else "sqlite"
        return (await self.session.execute(UPSERT_MESSAGE[dialect], values)).one()

    async def send(
        self,
        sender: Identity,
        conversation_id: uuid.UUID,
        body: str,
        client_msg_id: str,
        *,
        events: ChatEvents,
        skip_sid: str | None = None,
    ) -> Sent:
        """Store a text message with the next seq; a re-send returns the stored one and changes nothing.

        Three statements at most: take the seq, insert, notify the mentioned (only if any).
        """
        check_body(body)
        sender_id = uuid.UUID(sender.user_id)
        seq = await self._next_seq(conversation_id, sender_id)
        if seq is None:
            await self._recheck_access(conversation_id, sender_id)
            raise AppError(ErrorCode.CONFLICT, "Your membership changed meanwhile; send again")
        message_id = uuid.uuid4()
        row = await self._insert_message(
            {
                "id": message_id,
                "conversation_id": conversation_id,
                "seq": seq,
                "sender_id": sender_id,
                "kind": "text",
                "body": body,
                "client_msg_id": client_msg_id,
            }
        )
        if row.id != message_id:
            await self.session.rollback()
            return Sent(message_out(row), stored=False)
        message = message_out(row)
        names = mentioned_names(body)
        mentions = await self._notify_mentions(sender, message, names) if names else []
        await self.session.commit()
        sent = Sent(message, stored=True, mentions=mentions)
        await events.message_sent(sent, skip_sid=skip_sid)
        return sent

    async def _notify_mentions(
        self, sender: Identity, message: MessageOut, names: list[str]
    ) -> list[Mention]:
        """One INSERT … SELECT: a notification for each mentioned participant other than the sender."""
        username = func.lower(USERS.c.username)
        notification_id = case(
            {name: literal(uuid.uuid4(), GUID(length=16)) for name in names}, value=username
        )
        data = {"conversation_id": message.conversation_id, "message_id": message.id, "seq": message.seq}
        title = f"{sender.display_name} mentioned you"[:200]
        body = message.body[:NOTIFICATION_BODY_MAX]
        source = (
            select(
                notification_id,
                Participant.user_id,
                literal("mention", String()),
                literal(title, String()),
                literal(body, String()),
                literal(data, JSON()),
                literal(uuid.UUID(message.conversation_id), GUID(length=16)),
                literal(uuid.UUID(message.id), GUID(length=16)),
            )
            .join_from(Participant, USERS, USERS.c.id == Participant.user_id)
            .where(
                Participant.conversation_id == uuid.UUID(message.conversation_id),
                Participant.user_id != uuid.UUID(sender.user_id),
                username.in_(names),
            )
        )
        statement = (
            self._insert(Notification)
            .from_select(
                ["id", "user_id", "kind", "title", "body", "data", "conversation_id", "message_id"], source
            )
            .returning(Notification.id, Notification.user_id, Notification.created_at)
        )
        rows = (await self.session.execute(statement)).all()
        return [
            Mention(
                user_id=str(row.user_id),
                notification=NotificationOut(
                    id=str(row.id),
                    kind="mention",
                    title=title,
                    body=body,
                    data=data,
                    created_at=row.created_at,
                ),
            )
            for row in rows
        ]

    # -- reading ------------------------------------------------------------------------------

    async def sync(
        self, user_id: uuid.UUID, cursors: Sequence[SyncCursor], limit: int
    ) -> list[SyncedConversation]:
        """Messages after each cursor, at most `limit` per conversation: two statements in all.

        Seqs have no gaps, so the window after a cursor is exactly `after_seq+1 … after_seq+limit`.
        """
        wanted = {cursor.conversation_id: cursor.after_seq for cursor in cursors}
        statement = (
            select(Participant.conversation_id, Conversation.last_seq)
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .where(Participant.user_id == user_id, Participant.conversation_id.in_(list(wanted)))
        )
        last_seqs: dict[uuid.UUID, int] = {row[0]: row[1] for row in await self.session.execute(statement)}
        await self._check_cursors(user_id, cursors, last_seqs)
        windows = {
            cid: (after + 1, min(last_seqs[cid], after + limit))
            for cid, after in wanted.items()
            if after < last_seqs[cid]
        }
        by_conversation: dict[uuid.UUID, list[MessageOut]] = {cid: [] for cid in wanted}
        if windows:
            rows = await self.session.execute(
                select(*MESSAGE_COLUMNS)
                .where(
                    or_(
                        *(
                            and_(Message.conversation_id == cid, Message.seq.between(low, high))
                            for cid, (low, high) in windows.items()
                        )
                    )
                )
                .order_by(Message.conversation_id, Message.seq)
            )
            for row in rows:
                by_conversation[row.conversation_id].append(message_out(row))
        return [
            SyncedConversation(
                conversation_id=str(cid),
                messages=by_conversation[cid],
                last_seq=last_seqs[cid],
                recovered=last_seqs[cid] <= after + limit,
                has_more=last_seqs[cid] > after + limit,
            )
            for cid, after in wanted.items()
        ]

    async def _check_cursors(
        self, user_id: uuid.UUID, cursors: Sequence[SyncCursor], last_seqs: dict[uuid.UUID, int]
    ) -> None:
        for index, cursor in enumerate(cursors):
            if cursor.conversation_id not in last_seqs:
                await self._access(cursor.conversation_id, user_id)
            if cursor.after_seq > last_seqs[cursor.conversation_id]:
                raise validation_error(
                    f"conversations.{index}.after_seq",
                    f"is beyond the conversation's last seq {last_seqs[cursor.conversation_id]}",
                )

    async def messages(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int,
        before_seq: int | None,
        after_seq: int | None,
    ) -> MessagePage:
        """A page of history in ascending seq: after a cursor, before one, or the latest."""
        await self._access(conversation_id, user_id)
        statement = select(*MESSAGE_COLUMNS).where(Message.conversation_id == conversation_id)
        if before_seq is not None:
            statement = statement.where(Message.seq < before_seq)
        if after_seq is not None:
            statement = statement.where(Message.seq > after_seq).order_by(Message.seq)
        else:
            statement = statement.order_by(Message.seq.desc())
        rows = list(await self.session.execute(statement.limit(limit + 1)))
        items = [message_out(row) for row in rows[:limit]]
        if after_seq is None:
            items.reverse()
        return MessagePage(items=items, has_more=len(rows) > limit)

    async def search(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, query: str, limit: int
    ) -> MessagePage:
        """Case-insensitive substring search, newest first (a trigram index serves it on PostgreSQL)."""
        await self._access(conversation_id, user_id)
        statement = (
            select(*MESSAGE_COLUMNS)
            .where(
                Message.conversation_id == conversation_id,
                Message.body.ilike(like_pattern(query), escape=LIKE_ESCAPE),
            )
            .order_by(Message.seq.desc())
            .limit(limit + 1)
        )
        rows = list(await self.session.execute(statement))
        return MessagePage(items=[message_out(row) for row in rows[:limit]], has_more=len(rows) > limit)

    async def mark_read(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, last_read_seq: int, *, events: ChatEvents
    ) -> ReadOut:
        """Move the read cursor forward (never back, never past `last_seq`); three statements at most."""
        conversation, participant = await self._access(conversation_id, user_id)
        if last_read_seq > conversation.last_seq:
            raise validation_error(
                "last_read_seq", f"is beyond the conversation's last seq {conversation.last_seq}"
            )
        if last_read_seq <= participant.last_read_seq:
            return ReadOut(
                str(conversation_id),
                participant.last_read_seq,
                conversation.last_seq - participant.last_read_seq,
            )
        statement = (
            update(Participant)
            .where(Participant.conversation_id == conversation_id, Participant.user_id == user_id)
            .values(
                last_read_seq=case(
                    (Participant.last_read_seq < last_read_seq, last_read_seq),
                    else_=Participant.last_read_seq,
                )
            )
            .returning(Participant.last_read_seq)
            .execution_options(synchronize_session=False)
        )
        now_read: int | None = (await self.session.execute(statement)).scalar_one_or_none()
        if now_read is None:
            raise forbidden("You are not a participant of this conversation")
        unread, total = await self._unread_totals(user_id, conversation_id)
        await self.session.commit()
        state = ReadState(ReadOut(str(conversation_id), now_read, unread), total=total)
        await events.read_advanced(str(user_id), state)
        return state.read

    async def _unread_totals(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> tuple[int, int]:
        """(unread of one conversation, unread of all the user's conversations) in one statement."""
        unread = Conversation.last_seq - Participant.last_read_seq
        statement = (
            select(
                func.coalesce(
                    func.sum(case((Participant.conversation_id == conversation_id, unread), else_=0)), 0
                ),
                func.coalesce(func.sum(unread), 0),
            )
            .select_from(Participant)
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .where(Participant.user_id == user_id)
        )
        row = (await self.session.execute(statement)).one()
        return int(row[0]), int(row[1])

    async def unread_summary(self, user_id: uuid.UUID) -> UnreadSummary:
        """Each conversation with unread messages, its last message and unread mentions: two statements."""
        statement = (
            select(
                Participant.conversation_id,
                Conversation.last_seq,
                Participant.last_read_seq,
                *MESSAGE_COLUMNS,
            )
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .outerjoin(
                Message,
                and_(Message.conversation_id == Conversation.id, Message.seq == Conversation.last_seq),
            )
            .where(Participant.user_id == user_id, Conversation.last_seq > Participant.last_read_seq)
            .order_by(Conversation.updated_at.desc())
        )
        rows = list(await self.session.execute(statement))
        mentions = await self._unread_mentions(user_id) if rows else {}
        conversations = [
            UnreadConversation(
                conversation_id=str(row[0]),
                unread=row[1] - row[2],
                last_seq=row[1],
                last_read_seq=row[2],
                mentions=mentions.get(row[0], 0),
                last_message=message_out(row) if row.id is not None else None,
            )
            for row in rows
        ]
        return UnreadSummary(conversations=conversations, total=sum(c.unread for c in conversations))

    async def _unread_mentions(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
        statement = (
            select(Notification.conversation_id, func.count())
            .join(Message, Message.id == Notification.message_id)
            .join(
                Participant,
                and_(
                    Participant.conversation_id == Notification.conversation_id,
                    Participant.user_id == Notification.user_id,
                ),
            )
            .where(
                Notification.user_id == user_id,
                Notification.kind == "mention",
                Message.seq > Participant.last_read_seq,
            )
            .group_by(Notification.conversation_id)
        )
        return {row[0]: int(row[1]) for row in await self.session.execute(statement) if row[0] is not None}

    # -- conversations ------------------------------------------------------------------------

    async def _participants(
        self, conversation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Participant]]:
        statement = (
            select(Participant)
            .where(Participant.conversation_id.in_(conversation_ids))
            .order_by(Participant.joined_at, Participant.user_id)
        )
        grouped: dict[uuid.UUID, list[Participant]] = {cid: [] for cid in conversation_ids}
        for participant in (await self.session.execute(statement)).scalars():
            grouped[participant.conversation_id].append(participant)
        return grouped

    async def _load(self, conversation_id: uuid.UUID) -> ConversationOut:
        conversation = await self.session.get(Conversation, conversation_id, populate_existing=True)
        if conversation is None:
            raise not_found("Conversation")
        participants = await self._participants([conversation_id])
        return conversation_out(conversation, participants[conversation_id])

    async def conversation(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> ConversationOut:
        await self._access(conversation_id, user_id)
        return await self._load(conversation_id)

    async def list_for(self, user_id: uuid.UUID, limit: int, cursor: str | None) -> ConversationPage:
        """The user's conversations, most recently active first, each with last message and unread."""
        statement = (
            select(Conversation, Participant.last_read_seq, *MESSAGE_COLUMNS)
            .join(
                Participant,
                and_(Participant.conversation_id == Conversation.id, Participant.user_id == user_id),
            )
            .outerjoin(
                Message,
                and_(Message.conversation_id == Conversation.id, Message.seq == Conversation.last_seq),
            )
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            .limit(limit + 1)
        )
        if cursor is not None:
            updated_at, after_id = decode_cursor(cursor)
            statement = statement.where(
                or_(
                    Conversation.updated_at < updated_at,
                    and_(Conversation.updated_at == updated_at, Conversation.id < after_id),
                )
            )
        rows = list(await self.session.execute(statement))
        page = rows[:limit]
        participants = await self._participants([row[0].id for row in page]) if page else {}
        items = [
            ConversationSummaryOut(
                **msgspec.structs.asdict(conversation_out(row[0], participants[row[0].id])),
                last_message=message_out(row) if row.id is not None else None,
                unread=row[0].last_seq - row[1],
            )
            for row in page
        ]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1][0]
            next_cursor = encode_cursor(last.updated_at, last.id)
        return ConversationPage(items=items, next_cursor=next_cursor)

    async def _existing_users(self, user_ids: Sequence[uuid.UUID], field_name: str) -> None:
        if not user_ids:
            return
        found = set(
            (await self.session.execute(select(USERS.c.id).where(USERS.c.id.in_(user_ids)))).scalars()
        )
        unknown = [str(uid) for uid in user_ids if uid not in found]
        if unknown:
            raise AppError(
                ErrorCode.VALIDATION_ERROR,
                f"{field_name}: unknown users {', '.join(unknown)}",
                {"field": field_name, "unknown": unknown},
            )

    async def open_conversation(
        self,
        creator: uuid.UUID,
        kind: str,
        title: str | None,
        participant_ids: Sequence[uuid.UUID],
        *,
        events: ChatEvents,
    ) -> Created:
        """A group, or the direct conversation of a pair (the existing one if there is one)."""
        others = [uid for uid in dict.fromkeys(participant_ids) if uid != creator]
        if kind == "direct":
            if len(others) != 1:
                raise validation_error(
                    "participant_ids", "a direct conversation needs exactly one other user"
                )
            if title is not None:
                raise validation_error("title", "a direct conversation has no title")
        elif title is None or not title.strip():
            raise validation_error("title", "a group needs a title")
        await self._existing_users(others, "participant_ids")
        conversation_id = uuid.uuid4()
        values: dict[str, Any] = {"id": conversation_id, "kind": kind, "title": title, "created_by": creator}
        if kind == "direct":
            values["direct_key"] = direct_key(creator, others[0])
        statement = self._insert(Conversation).values(**values)
        if kind == "direct":
            statement = statement.on_conflict_do_nothing(index_elements=["direct_key"])
        inserted = (await self.session.execute(statement.returning(Conversation.id))).scalar_one_or_none()
        if inserted is None:
            await self.session.rollback()
            existing = await self.session.scalar(
                select(Conversation.id).where(Conversation.direct_key == values["direct_key"])
            )
            if existing is None:
                raise AppError(ErrorCode.CONFLICT, "The conversation changed meanwhile; try again")
            return Created(await self._load(existing), created=False)
        rows = [{"conversation_id": conversation_id, "user_id": creator, "role": "owner"}]
        rows += [{"conversation_id": conversation_id, "user_id": uid, "role": "member"} for uid in others]
        await self.session.execute(
            self._insert(Participant).values([{"id": uuid.uuid4(), **row} for row in rows])
        )
        await self.session.commit()
        conversation = await self._load(conversation_id)
        await events.conversation_created(conversation)
        return Created(conversation, created=True)

    async def _manage(self, conversation_id: uuid.UUID, actor: uuid.UUID) -> tuple[Conversation, Participant]:
        """Access for changes to a group: owner or admin only."""
        conversation, participant = await self._access(conversation_id, actor)
        if conversation.kind != "group":
            raise forbidden("A direct conversation cannot be changed")
        if participant.role not in MANAGERS:
            raise forbidden("Only the owner or an admin may do that")
        return conversation, participant

    async def rename(
        self, actor: uuid.UUID, conversation_id: uuid.UUID, title: str, *, events: ChatEvents
    ) -> ConversationOut:
        if not title.strip():
            raise validation_error("title", "must not be only whitespace")
        await self._manage(conversation_id, actor)
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(title=title, updated_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        await self.session.commit()
        conversation = await self._load(conversation_id)
        await events.conversation_updated(conversation)
        return conversation

    async def delete_conversation(
        self, actor: uuid.UUID, conversation_id: uuid.UUID, *, events: ChatEvents
    ) -> None:
        _, participant = await self._access(conversation_id, actor)
        if participant.role != "owner":
            raise forbidden("Only the owner may delete the conversation")
        members = await self.session.execute(
            delete(Participant)
            .where(Participant.conversation_id == conversation_id)
            .returning(Participant.user_id)
        )
        member_ids = [str(user_id) for user_id in members.scalars()]
        await self.session.execute(delete(Conversation).where(Conversation.id == conversation_id))
        await self.session.commit()
        await events.conversation_deleted(str(conversation_id), member_ids)

    async def add_participants(
        self,
        actor: uuid.UUID,
        conversation_id: uuid.UUID,
        user_ids: Sequence[uuid.UUID],
        *,
        events: ChatEvents,
    ) -> ConversationOut:
        """Add users as members; they start with nothing unread. Users already in are left alone."""
        await self._manage(conversation_id, actor)
        wanted = list(dict.fromkeys(user_ids))
        await self._existing_users(wanted, "user_ids")
        current = select(Conversation.last_seq).where(Conversation.id == conversation_id).scalar_subquery()
        statement = (
            self._insert(Participant)
            .values(
                [
                    {
                        "id": uuid.uuid4(),
                        "conversation_id": conversation_id,
                        "user_id": uid,
                        "role": "member",
                        "last_read_seq": current,
                    }
                    for uid in wanted
                ]
            )
            .on_conflict_do_nothing(index_elements=["conversation_id", "user_id"])
            .returning(Participant.user_id)
        )
        added = [str(uid) for uid in (await self.session.execute(statement)).scalars()]
        await self.session.commit()
        await events.participants_added(str(conversation_id), added, by=str(actor))
        return await self._load(conversation_id)

    async def leave(self, member: Identity, conversation_id: uuid.UUID, *, events: ChatEvents) -> Removal:
        """The caller leaves: three statements in one transaction, then the events."""
        user_id = uuid.UUID(member.user_id)
        return await self._remove(conversation_id, user_id, f"{member.display_name} left", user_id, events)

    async def remove_participant(
        self, actor: uuid.UUID, conversation_id: uuid.UUID, user_id: uuid.UUID, *, events: ChatEvents
    ) -> Removal:
        """Remove someone: anyone may remove themselves; the owner anyone; an admin members only."""
        conversation, participant = await self._access(conversation_id, actor)
        target = await self.session.scalar(
            select(Participant.role).where(
                Participant.conversation_id == conversation_id, Participant.user_id == user_id
            )
        )
        if target is None:
            raise not_found("Participant")
        if user_id != actor:
            allowed = participant.role == "owner" or (participant.role == "admin" and target == "member")
            if conversation.kind != "group" or not allowed:
                raise forbidden("You may not remove that participant")
        name = await self.session.scalar(select(USERS.c.display_name).where(USERS.c.id == user_id))
        verb = "left" if user_id == actor else "was removed"
        return await self._remove(conversation_id, user_id, f"{name} {verb}", actor, events)

    async def _remove(
        self,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        notice: str,
        actor: uuid.UUID,
        events: ChatEvents,
    ) -> Removal:
        group_only = select(Conversation.id).where(Conversation.kind == "group")
        removed = await self.session.execute(
            delete(Participant)
            .where(
                Participant.conversation_id == conversation_id,
                Participant.user_id == user_id,
                Participant.conversation_id.in_(group_only),
            )
            .returning(Participant.id)
        )
        if removed.scalar_one_or_none() is None:
            conversation = await self._recheck_access(conversation_id, user_id)
            if conversation.kind == "direct":
                raise forbidden("A direct conversation cannot be left")
            raise AppError(ErrorCode.CONFLICT, "The participants changed meanwhile; try again")
        seq = await self._next_seq(conversation_id, None)
        if seq is None:
            raise not_found("Conversation")
        row = await self._insert_message(
            {
                "id": uuid.uuid4(),
                "conversation_id": conversation_id,
                "seq": seq,
                "sender_id": user_id,
                "kind": "system",
                "body": notice,
                "client_msg_id": None,
            }
        )
        await self.session.commit()
        removal = Removal(str(conversation_id), str(user_id), str(actor), message_out(row))
        await events.participant_removed(removal)
        return removal
