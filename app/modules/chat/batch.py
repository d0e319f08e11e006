"""One batch of messages written in one transaction with set-based statements.

Every statement serves the whole batch: one `UPDATE … RETURNING` takes each conversation's seq range
(locking the conversations in id order, so that batches on several nodes cannot deadlock), one
multi-row `INSERT … RETURNING` stores the messages, one `INSERT … SELECT` notifies every mentioned
participant. The seq range of a conversation is taken for the messages expected to be stored, so a
message that turns out not to be (a `client_msg_id` stored earlier, a sender no longer a participant)
would leave a gap: the attempt is rolled back, the message is settled without storing it, and the rest
are written again. A batch of new messages from participants, the usual case, is written at the first
attempt, in two statements (three when someone is mentioned).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from advanced_alchemy.types import GUID
from sqlalchemy import JSON, String, and_, case, func, literal, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import utc_now
from app.modules.chat.models import Notification
from app.modules.chat.rows import (
    CONVERSATIONS,
    NOTIFICATION_BODY_MAX,
    PARTICIPANTS,
    UPSERT_MESSAGE,
    USERS,
    Mention,
    Sent,
    mentioned_names,
    message_out,
)
from app.modules.chat.schemas import MessageOut, NotificationOut

ATTEMPTS = 4
"""Attempts of one batch before its unsettled messages are refused: the refusals are settled in one,
the re-sends in another, and each further one only if the participants or another node changed things
in between."""

MessageKey = tuple[uuid.UUID, uuid.UUID | None, str | None]
Checkpoint = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Draft:
    """A participant's text message to store, idempotent by `client_msg_id`."""

    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    body: str
    client_msg_id: str
    sender_name: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def key(self) -> MessageKey:
        """The message's idempotency key, as the unique index of `messages` has it."""
        return (self.conversation_id, self.sender_id, self.client_msg_id)

    def values(self, seq: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "seq": seq,
            "sender_id": self.sender_id,
            "kind": "text",
            "body": self.body,
            "client_msg_id": self.client_msg_id,
        }


class Refused:
    """The sender is not a participant of the conversation (or it is gone): nothing was stored."""


REFUSED = Refused()
Outcome = Sent | Refused


@dataclass(slots=True)
class Attempt:
    """How far one write on the writer's connection got: once its commit has been sent, whether it
    happened is unknown, so it is never written again."""

    committing: bool = False


class BatchWrite:
    """The outcome of every draft of one batch, by draft id, written on `connection`."""

    def __init__(
        self,
        connection: AsyncConnection,
        drafts: Sequence[Draft],
        attempt: Attempt,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.connection = connection
        self.attempt = attempt
        self.checkpoint = checkpoint
        self.dialect = connection.dialect.name
        self.firsts: dict[MessageKey, Draft] = {}
        self.repeats: dict[uuid.UUID, Draft] = {}
        for draft in drafts:
            first = self.firsts.setdefault(draft.key, draft)
            if first is not draft:
                self.repeats[draft.id] = first
        self.settled: dict[uuid.UUID, Outcome] = {}

    async def run(self) -> dict[uuid.UUID, Outcome]:
        for _ in range(ATTEMPTS):
            pending = [draft for draft in self.firsts.values() if draft.id not in self.settled]
            if not pending:
                break
            await self._attempt(pending)
        for draft in self.firsts.values():
            self.settled.setdefault(draft.id, REFUSED)
        return self._answers()

    def _answers(self) -> dict[uuid.UUID, Outcome]:
        """A repeat within the batch gets its first's message, as a re-send (never broadcast)."""
        answers = dict(self.settled)
        for draft_id, first in self.repeats.items():
            outcome = self.settled[first.id]
            answers[draft_id] = Sent(outcome.message, stored=False) if isinstance(outcome, Sent) else outcome
        return answers

    async def _attempt(self, pending: list[Draft]) -> None:
        transaction = await self.connection.begin()
        try:
            last_seqs = await self._take_seqs(pending)
            refused = {draft.conversation_id for draft in pending} - last_seqs.keys()
            if refused:
                await transaction.rollback()
                await self._settle_refusals([draft for draft in pending if draft.conversation_id in refused])
                return
            if self.checkpoint is not None:
                await self.checkpoint()
            messages, earlier = await self._insert(pending, last_seqs)
            if earlier:
                await transaction.rollback()
                self.settled.update(earlier)
                return
            mentions = await self._notify_mentions(pending, messages)
            self.attempt.committing = True
            await transaction.commit()
        except BaseException:
            if transaction.is_active:
                with contextlib.suppress(Exception):  # a dead connection cannot roll back: the error stands
                    await transaction.rollback()
            raise
        for draft in pending:
            self.settled[draft.id] = Sent(messages[draft.id], stored=True, mentions=mentions[draft.id])

    async def _take_seqs(self, pending: list[Draft]) -> dict[uuid.UUID, int]:
        """Each conversation's new `last_seq`, advanced by its number of drafts; a conversation with a
        sender who is not a participant (or that does not exist) is left alone and not returned."""
        counts = Counter(draft.conversation_id for draft in pending)
        senders: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for draft in pending:
            senders[draft.conversation_id].add(draft.sender_id)
        ids = CONVERSATIONS.c.id
        in_order = select(ids).where(ids.in_(list(counts))).order_by(ids).with_for_update()
        statement = (
            update(CONVERSATIONS)
            .where(ids.in_(in_order), or_(*(_all_participate(cid, senders[cid]) for cid in counts)))
            .values(
                last_seq=CONVERSATIONS.c.last_seq + case(*((ids == cid, n) for cid, n in counts.items())),
                updated_at=utc_now(),
            )
            .returning(ids, CONVERSATIONS.c.last_seq)
        )
        return {row.id: row.last_seq for row in await self.connection.execute(statement)}

    async def _settle_refusals(self, drafts: list[Draft]) -> None:
        """Refuse the drafts whose sender is not a participant. A conversation with one sender needs no
        question; otherwise one statement (in its own transaction) asks which senders still are."""
        senders: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for draft in drafts:
            senders[draft.conversation_id].add(draft.sender_id)
        shared = [(cid, uid) for cid, uids in senders.items() if len(uids) > 1 for uid in uids]
        present: set[tuple[uuid.UUID, uuid.UUID]] = set()
        if shared:
            pairs = PARTICIPANTS.c.conversation_id, PARTICIPANTS.c.user_id
            asked = or_(*(and_(pairs[0] == cid, pairs[1] == uid) for cid, uid in shared))
            async with self.connection.begin():
                rows = await self.connection.execute(select(*pairs).where(asked))
                present = {(row.conversation_id, row.user_id) for row in rows}
        for draft in drafts:
            if (draft.conversation_id, draft.sender_id) not in present:
                self.settled[draft.id] = REFUSED

    async def _insert(
        self, pending: list[Draft], last_seqs: dict[uuid.UUID, int]
    ) -> tuple[dict[uuid.UUID, MessageOut], dict[uuid.UUID, Outcome]]:
        """Store the drafts with their seqs: (the stored messages by draft id, the drafts whose
        `client_msg_id` was stored earlier, answered with that message)."""
        counts = Counter(draft.conversation_id for draft in pending)
        next_seq = {cid: last_seqs[cid] - n + 1 for cid, n in counts.items()}
        values = []
        for draft in pending:
            values.append(draft.values(next_seq[draft.conversation_id]))
            next_seq[draft.conversation_id] += 1
        ours = {draft.id for draft in pending}
        by_key = {draft.key: draft for draft in pending}
        stored: dict[uuid.UUID, MessageOut] = {}
        earlier: dict[uuid.UUID, Outcome] = {}
        # One statement built once, given every row: SQLAlchemy sends it as one multi-row INSERT
        # ("insertmanyvalues") from its compiled cache; `.values([...])` was compiled anew each time.
        for row in await self.connection.execute(UPSERT_MESSAGE[self.dialect], values):
            message = message_out(row)
            if row.id in ours:
                stored[row.id] = message
            else:
                earlier[by_key[(row.conversation_id, row.sender_id, row.client_msg_id)].id] = Sent(
                    message, stored=False
                )
        return stored, earlier

    async def _notify_mentions(
        self, pending: list[Draft], messages: dict[uuid.UUID, MessageOut]
    ) -> dict[uuid.UUID, list[Mention]]:
        """One INSERT … SELECT for the batch: a notification for each mentioned participant other than
        the sender who has not muted the conversation."""
        mentions: dict[uuid.UUID, list[Mention]] = {draft.id: [] for draft in pending}
        sources = []
        notices: dict[uuid.UUID, tuple[uuid.UUID, NotificationOut]] = {}
        for draft in pending:
            names = mentioned_names(draft.body)
            if names:
                ids = {name: uuid.uuid4() for name in names}
                notice = _mention_notice(draft, messages[draft.id])
                notices.update(dict.fromkeys(ids.values(), (draft.id, notice)))
                sources.append(_mention_source(draft, notice, ids))
        if not sources:
            return mentions
        insert_into = pg_insert if self.dialect == "postgresql" else sqlite_insert
        columns = ["id", "user_id", "kind", "title", "body", "data", "conversation_id", "message_id"]
        statement = (
            insert_into(Notification)
            .from_select(columns, sources[0] if len(sources) == 1 else union_all(*sources))
            .returning(Notification.id, Notification.user_id, Notification.created_at)
        )
        for row in await self.connection.execute(statement):
            draft_id, notice = notices[row.id]
            notification = msgspec.structs.replace(notice, id=str(row.id), created_at=row.created_at)
            mentions[draft_id].append(Mention(user_id=str(row.user_id), notification=notification))
        return mentions


def _all_participate(conversation_id: uuid.UUID, senders: set[uuid.UUID]) -> Any:
    """The conversation's row, if every one of `senders` is a participant of it.

    The senders' participant rows are read with `FOR KEY SHARE`: a plain read would see them as the
    statement's snapshot has them, so a removal that committed while the batch waited for the
    conversation's row would still count its sender. A locked read waits for the removal and skips a
    row it deleted. KEY SHARE does not conflict with the updates of `last_read_seq` that other batches
    make, only with the removal of the row."""
    locked = (
        select(PARTICIPANTS.c.user_id)
        .where(PARTICIPANTS.c.conversation_id == conversation_id, PARTICIPANTS.c.user_id.in_(senders))
        .with_for_update(read=True, key_share=True)
        .subquery()
    )
    participating = select(func.count()).select_from(locked).scalar_subquery()
    return and_(CONVERSATIONS.c.id == conversation_id, participating == len(senders))


def _mention_notice(draft: Draft, message: MessageOut) -> NotificationOut:
    """The notification every participant mentioned in `message` gets (its id and time come later)."""
    return NotificationOut(
        id="",
        kind="mention",
        title=f"{draft.sender_name} mentioned you"[:200],
        body=message.body[:NOTIFICATION_BODY_MAX],
        data={"conversation_id": message.conversation_id, "message_id": message.id, "seq": message.seq},
        created_at=message.created_at,
    )


def _mention_source(draft: Draft, notice: NotificationOut, ids: dict[str, uuid.UUID]) -> Any:
    """The notification rows of one message: its mentioned, unmuted participants but the sender."""
    username = func.lower(USERS.c.username)
    return (
        select(
            case({name: literal(nid, GUID(length=16)) for name, nid in ids.items()}, value=username),
            PARTICIPANTS.c.user_id,
            literal(notice.kind, String()),
            literal(notice.title, String()),
            literal(notice.body, String()),
            literal(notice.data, JSON()),
            literal(draft.conversation_id, GUID(length=16)),
            literal(draft.id, GUID(length=16)),
        )
        .join_from(PARTICIPANTS, USERS, USERS.c.id == PARTICIPANTS.c.user_id)
        .where(
            PARTICIPANTS.c.conversation_id == draft.conversation_id,
            PARTICIPANTS.c.user_id != draft.sender_id,
            PARTICIPANTS.c.muted_at.is_(None),
            username.in_(list(ids)),
        )
    )
