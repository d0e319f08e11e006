"""The node's one writer of chat messages: concurrent sends are committed together (group commit).

A message handed over while no batch is being written is written at once, alone; the ones handed over
while a batch is in flight wait for it and are written together as the next batch, so the batch size
follows the load with no timer. Each sender gets its own outcome (`BatchWrite`), after the commit.

The writer keeps one database connection of its own, so the hot path never pays the pool's pre-ping,
and writes its batches on the driver's connection under it (`PgStatements`, `SqliteStatements`): on
PostgreSQL most in one statement that commits on its own, on SQLite most in one hand-over to
aiosqlite's thread, the others in a transaction (`BatchWrite`).
When a batch fails on a connection that died (a database restart, a connection cut), it is written
again once on a new connection, and so is one that PostgreSQL rolled back to break a deadlock, unless
the failure came while its transaction was committing (the commit may have happened; the one
statement needs no such care, since a message it stored is recognised by its id when written again).
Any other database failure fails every message of the batch, which stores none of them: UNAVAILABLE
when the database cannot serve, INTERNAL otherwise; the next batch starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.connections import give_back
from app.core.errors import AppError, ErrorCode
from app.core.faults import is_transaction_conflict, is_unavailable
from app.modules.chat.batch import Attempt, BatchWrite, Checkpoint, Outcome, Statements
from app.modules.chat.pg_statements import PgStatements
from app.modules.chat.sqlite_statements import SqliteStatements
from app.modules.chat.statements import Draft

if TYPE_CHECKING:
    from app.core.context import AppContext

logger = logging.getLogger(__name__)

BATCH_MAX = 256
"""Messages in one batch at most: a larger backlog is written as several batches in a row."""

T = TypeVar("T")
Work = Callable[[AsyncConnection, Attempt], Awaitable[T]]
"""A write of its own on the writer's connection, in a transaction it commits (see `run_alone`)."""
Entry = tuple[Draft | Work[Any], asyncio.Future[Any]]


class MessageWriter:
    """Writes the chat messages (and participants' removals) of this node, in batches, in order."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._queue: list[Entry] = []
        self._draining: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None
        self._statements: Statements | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._queued = asyncio.Event()
        self.checkpoint: Checkpoint | None = None
        """Awaited in every attempt of a batch once its seqs are taken, before its messages are
        inserted: tests cut the database there. None in service."""

    async def write(self, draft: Draft) -> Outcome:
        """Store `draft` in the next batch; its outcome once that batch is committed (or failed)."""
        outcome: Outcome = await self._hand_over(draft)
        return outcome

    async def run_alone(self, work: Work[T]) -> T:
        """Run `work` as a batch of its own, after the messages handed over before it and before the
        ones handed over after it (a participant's removal with its system message)."""
        result: T = await self._hand_over(work)
        return result

    async def _hand_over(self, item: Draft | Work[Any]) -> Any:
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, answer))
        self._queued.set()
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name="chat-writer")
        # A sender cancelled meanwhile cancels its answer only: its entry is written all the same.
        return await answer

    async def close(self) -> None:
        """Finish the batches already handed over, then give the connection back."""
        self._open.set()
        if self._draining is not None:
            await self._draining
        await self._drop_connection(invalidate=False)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """No batch starts while this is entered; the messages handed over meanwhile are written as one
        batch once it is left (tests form batches with it, see `queued_at_least`)."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    async def queued_at_least(self, count: int) -> None:
        """Return once `count` messages wait for the next batch."""
        while len(self._queue) < count:
            self._queued.clear()
            await self._queued.wait()

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._open.wait()
                await self._flush(self._next_batch())
        finally:
            self._draining = None

    def _next_batch(self) -> list[Entry]:
        """The messages at the head of the queue (up to BATCH_MAX), or the work there alone."""
        size = 1
        if isinstance(self._queue[0][0], Draft):
            while size < min(len(self._queue), BATCH_MAX) and isinstance(self._queue[size][0], Draft):
                size += 1
        batch, self._queue = self._queue[:size], self._queue[size:]
        return batch

    async def _flush(self, batch: list[Entry]) -> None:
        try:
            answers = await self._answers(batch)
        except Exception as exc:  # noqa: BLE001 - every sender is answered; the cause is logged once
            failure = self._failure(exc, len(batch))
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(AppError(failure.code, failure.message))
            return
        for (_, answer), result in zip(batch, answers, strict=True):
            if not answer.done():
                answer.set_result(result)

    async def _answers(self, batch: list[Entry]) -> list[Any]:
        """Each entry's answer: a message's outcome, or the result of the work that is alone."""
        head = batch[0][0]
        if not isinstance(head, Draft):
            return [await self._on_connection(head)]
        drafts = [item for item, _ in batch if isinstance(item, Draft)]
        self.ctx.metrics.chat_batch_size.observe(len(drafts))
        outcomes = await self._on_connection(partial(self._write_batch, drafts))
        return [outcomes[draft.id] for draft in drafts]

    async def _write_batch(
        self, drafts: list[Draft], connection: AsyncConnection, attempt: Attempt
    ) -> dict[uuid.UUID, Outcome]:
        if self._statements is None:
            self._statements = (
                await PgStatements.on(connection)
                if connection.dialect.name == "postgresql"
                else await SqliteStatements.on(connection)
            )
        batch = BatchWrite(self._statements, drafts, attempt, self.checkpoint)
        outcomes = await batch.run()
        way = "at_once" if batch.at_once else "transaction"
        self.ctx.metrics.chat_batches.labels(way).inc()
        return outcomes

    async def _on_connection(self, work: Work[T]) -> T:
        """Run `work`, once more if it failed on a connection that turned out dead (on a new one) or lost
        a race with another transaction (a deadlock with a removal on another node)."""
        retried = False
        while True:
            connection = await self._connect()
            attempt = Attempt()
            try:
                return await work(connection, attempt)
            except Exception as exc:
                conflict = is_transaction_conflict(exc)
                if not conflict:
                    await self._drop_connection(invalidate=True)
                if retried or attempt.committing or not (conflict or is_unavailable(exc)):
                    raise
                retried = True
                logger.info("chat writer: %s; writing again", type(exc).__name__)

    def _failure(self, exc: Exception, size: int) -> AppError:
        """What every entry of a failed batch is answered: UNAVAILABLE when the database cannot serve,
        INTERNAL for anything else (logged with its traceback)."""
        if is_unavailable(exc):
            logger.warning(
                "chat writer: the database is unavailable (%s); %d messages failed", type(exc).__name__, size
            )
            return AppError(ErrorCode.UNAVAILABLE, "Service temporarily unavailable; try again")
        logger.error("chat writer: a batch of %d messages failed", size, exc_info=exc)
        return AppError(ErrorCode.INTERNAL, "Internal server error")

    async def _connect(self) -> AsyncConnection:
        if self._connection is None:
            self._connection = await self.ctx.db.engine.connect()
        return self._connection

    async def _drop_connection(self, *, invalidate: bool) -> None:
        connection, self._connection = self._connection, None
        self._statements = None
        await give_back(connection, invalidate=invalidate)
