"""One batch of messages, written at once where it can be, else in one transaction.

At once (`Statements.store_at_once`): on PostgreSQL one statement that commits on its own takes each
conversation's seq range, inserts the messages, notifies the mentioned and returns the messages
stored earlier under the same `client_msg_id`, or stores nothing when a sender is not a participant
(or another node stored one of the ids meanwhile); on SQLite one hand-over to aiosqlite's thread does
the same for a batch without mentions. Any other batch is written in a transaction of set-based
statements: one `UPDATE … RETURNING` takes each conversation's seq range (locking the conversations
in id order, so that batches on several nodes cannot deadlock), one multi-row `INSERT … RETURNING`
stores the messages, one `INSERT … SELECT` notifies every mentioned participant. The seq range of a
conversation is taken for the messages expected to be stored, so a message that turns out not to be
(a `client_msg_id` stored earlier, a sender no longer a participant) would leave a gap: the attempt is
rolled back, the message is settled without storing it, and the rest are written again.

A message found stored under its draft's own id was stored by an earlier attempt of this very batch
whose answer was lost (the connection died as the one statement committed): it is answered as stored
now, so that it is broadcast once. This is what lets the writer run the one statement again on a new
connection when its connection dies, where a transaction whose COMMIT was in flight is not run again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import msgspec

from app.core.ids import random_ids
from app.modules.chat.rows import NOTIFICATION_BODY_MAX, Mention, Sent, mentioned_names, message_of
from app.modules.chat.schemas import MessageOut, NotificationOut
from app.modules.chat.statements import Draft, MentionSource, MessageKey, NewMessage, numbered, seqs_wanted

ATTEMPTS = 4
"""Attempts of one batch before its unsettled messages are refused: the refusals are settled in one,
the re-sends in another, and each further one only if the participants or another node changed things
in between."""

Checkpoint = Callable[[], Awaitable[None]]


class Refused:
    """The sender is not a participant of the conversation (or it is gone): nothing was stored."""


REFUSED = Refused()
Outcome = Sent | Refused


@dataclass(slots=True)
class Attempt:
    """How far one write on the writer's connection got: once its commit has been sent, whether it
    happened is unknown, so it is never written again."""

    committing: bool = False


class Statements(Protocol):
    """A batch's transaction and statements: `CoreStatements`, or `PgStatements` on PostgreSQL."""

    async def begin(self) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def take_seqs(
        self, counts: dict[uuid.UUID, int], senders: dict[uuid.UUID, set[uuid.UUID]]
    ) -> dict[uuid.UUID, int]: ...
    async def insert(self, messages: Sequence[NewMessage]) -> Iterable[Sequence[Any]]: ...
    async def notify(self, sources: Sequence[MentionSource]) -> Iterable[Sequence[Any]]: ...
    async def participating(
        self, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]: ...
    async def store_at_once(
        self, drafts: Sequence[Draft], mentions: Sequence[MentionSource]
    ) -> Iterable[Sequence[Any]] | None: ...


class BatchWrite:
    """The outcome of every draft of one batch, by draft id, written with `statements`."""

    def __init__(
        self,
        statements: Statements,
        drafts: Sequence[Draft],
        attempt: Attempt,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.statements = statements
        self.attempt = attempt
        self.checkpoint = checkpoint
        self.firsts: dict[MessageKey, Draft] = {}
        self.repeats: dict[uuid.UUID, Draft] = {}
        for draft in drafts:
            first = self.firsts.setdefault(draft.key, draft)
            if first is not draft:
                self.repeats[draft.id] = first
        sources = (_mention_source(draft) for draft in self.firsts.values())
        self.mentions = {source.message_id: source for source in sources if source is not None}
        """The notifications each first draft asks for, by draft id, their ids drawn once for every way
        and attempt (an attempt that stores nothing keeps none of them)."""
        self.settled: dict[uuid.UUID, Outcome] = {}
        self.at_once = False
        """Whether the batch was written by `store_at_once` alone."""

    async def run(self) -> dict[uuid.UUID, Outcome]:
        await self._store_at_once()
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

    async def _store_at_once(self) -> None:
        """Settle every draft at once, if the backend can (and no test stops the batch half way, which
        writing at once does not have)."""
        if self.checkpoint is not None:
            return
        sources = list(self.mentions.values())
        rows = await self.statements.store_at_once(list(self.firsts.values()), sources)
        if rows is None:
            return
        notices = {nid: source.notice for source in sources for nid in source.ids.values()}
        for row in rows:
            draft_id, values = row[0], row[1:9]
            message = message_of(values)
            if draft_id is not None:
                self.settled[draft_id] = Sent(message, stored=values[0] == draft_id)
                continue
            ids, users, times = row[9:12] if row[9] is not None else ((), (), ())
            mentions = [
                Mention(str(user_id), _stored(_placed(notices[nid], message), nid, created_at))
                for nid, user_id, created_at in zip(ids, users, times, strict=True)
            ]
            self.settled[values[0]] = Sent(message, stored=True, mentions=mentions)
        self.at_once = True

    async def _attempt(self, pending: list[Draft]) -> None:
        statements = self.statements
        await statements.begin()
        try:
            last_seqs = await self._take_seqs(pending)
            refused = {draft.conversation_id for draft in pending} - last_seqs.keys()
            if refused:
                await statements.rollback()
                await self._settle_refusals([draft for draft in pending if draft.conversation_id in refused])
                return
            if self.checkpoint is not None:
                await self.checkpoint()
            messages, earlier = await self._insert(pending, last_seqs)
            if earlier:
                await statements.rollback()
                self.settled.update(earlier)
                return
            mentions = await self._notify_mentions(pending, messages)
            self.attempt.committing = True
            await statements.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # a dead connection cannot roll back: the error stands
                await statements.rollback()
            raise
        for draft in pending:
            self.settled[draft.id] = Sent(messages[draft.id], stored=True, mentions=mentions[draft.id])

    async def _take_seqs(self, pending: list[Draft]) -> dict[uuid.UUID, int]:
        """Each conversation's new `last_seq`, advanced by its number of drafts; a conversation with a
        sender who is not a participant (or that does not exist) is left alone and not returned."""
        return await self.statements.take_seqs(*seqs_wanted(pending))

    async def _settle_refusals(self, drafts: list[Draft]) -> None:
        """Refuse the drafts whose sender is not a participant. A conversation with one sender needs no
        question; otherwise one statement (in its own transaction) asks which senders still are."""
        senders: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for draft in drafts:
            senders[draft.conversation_id].add(draft.sender_id)
        shared = [(cid, uid) for cid, uids in senders.items() if len(uids) > 1 for uid in uids]
        present = await self.statements.participating(shared) if shared else set()
        for draft in drafts:
            if (draft.conversation_id, draft.sender_id) not in present:
                self.settled[draft.id] = REFUSED

    async def _insert(
        self, pending: list[Draft], last_seqs: dict[uuid.UUID, int]
    ) -> tuple[dict[uuid.UUID, MessageOut], dict[uuid.UUID, Outcome]]:
        """Store the drafts with their seqs: (the stored messages by draft id, the drafts whose
        `client_msg_id` was stored earlier, answered with that message)."""
        rows = numbered(pending, last_seqs)
        seqs = {row.id: row.seq for row in rows}
        by_key = {draft.key: draft for draft in pending}
        stored: dict[uuid.UUID, MessageOut] = {}
        earlier: dict[uuid.UUID, Outcome] = {}
        for row in await self.statements.insert(rows):
            message = message_of(row)
            if seqs.get(row[0]) == row[2]:
                stored[row[0]] = message
            else:  # stored earlier: by another send, or by this one in an attempt whose answer was lost
                earlier[by_key[(row[1], row[3], row[6])].id] = Sent(message, stored=row[0] in seqs)
        return stored, earlier

    async def _notify_mentions(
        self, pending: list[Draft], messages: dict[uuid.UUID, MessageOut]
    ) -> dict[uuid.UUID, list[Mention]]:
        """One statement for the batch: a notification for each mentioned participant other than the
        sender who has not muted the conversation."""
        mentions: dict[uuid.UUID, list[Mention]] = {draft.id: [] for draft in pending}
        sources = [
            replace(source, notice=_placed(source.notice, messages[draft.id]))
            for draft in pending
            if (source := self.mentions.get(draft.id)) is not None
        ]
        if not sources:
            return mentions
        notices = {nid: source for source in sources for nid in source.ids.values()}
        for nid, user_id, created_at in await self.statements.notify(sources):
            source = notices[nid]
            notification = _stored(source.notice, nid, created_at)
            mentions[source.message_id].append(Mention(user_id=str(user_id), notification=notification))
        return mentions


def _mention_source(draft: Draft) -> MentionSource | None:
    """The notifications `draft` asks for, each with its id, or None if it mentions no one (their data
    and time come once the message is stored: `_placed`, `_stored`)."""
    names = mentioned_names(draft.body)
    if not names:
        return None
    notice = NotificationOut(
        id="",
        kind="mention",
        title=f"{draft.sender_name} mentioned you"[:200],
        body=draft.body[:NOTIFICATION_BODY_MAX],
        data={},
        created_at=dt.datetime.now(dt.UTC),
    )
    ids = {name: random_ids.next() for name in names}
    return MentionSource(draft.conversation_id, draft.id, draft.sender_id, notice, ids)


def _placed(notice: NotificationOut, message: MessageOut) -> NotificationOut:
    """`notice` with its data: where the stored `message` is (`STORE_AT_ONCE` builds the same in SQL)."""
    data = {"conversation_id": message.conversation_id, "message_id": message.id, "seq": message.seq}
    return msgspec.structs.replace(notice, data=data)


def _stored(notice: NotificationOut, notification_id: uuid.UUID, created_at: dt.datetime) -> NotificationOut:
    """`notice` as it was stored, under `notification_id` at `created_at`."""
    return msgspec.structs.replace(notice, id=str(notification_id), created_at=created_at)
