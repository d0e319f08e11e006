"""The node's one writer of chat messages: concurrent sends are committed together (group commit).

A message handed over while no batch is being written is written at once, alone; the ones handed over
while a batch is in flight wait for it and are written together as the next batch, so the batch size
follows the load with no timer. Each sender gets its own outcome (`BatchWrite`), after the commit.

The writer keeps database connections of its own (`Lane`s), so the hot path never pays the pool's
pre-ping, and writes its batches on the driver's connection under them (`PgStatements`,
`SqliteStatements`). On PostgreSQL it has two: once a batch's commit is sent, the next batch is
written on the other connection while the first waits for its commit (a batch never starts before
the one ahead of it can no longer be written again, and one touching the same conversation waits for
its row, so seqs follow the order of the batches; answers go out in that order too). SQLite writes
one transaction at a time: one lane. When a batch fails on a connection that died (a database restart,
a connection cut), it is written again once on a new connection, and so is one that PostgreSQL rolled
back to break a deadlock, unless the failure came while committing (the commit may have happened).
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

from app.core.errors import AppError, ErrorCode
from app.core.faults import is_transaction_conflict, is_unavailable
from app.modules.chat.batch import Attempt, BatchWrite, Checkpoints, Draft, Outcome, Statements
from app.modules.chat.pg_statements import PgStatements
from app.modules.chat.sqlite_statements import SqliteStatements

if TYPE_CHECKING:
    from app.core.context import AppContext

logger = logging.getLogger(__name__)

BATCH_MAX = 256
"""Messages in one batch at most: a larger backlog is written as several batches in a row."""

T = TypeVar("T")
Work = Callable[[AsyncConnection, Attempt], Awaitable[T]]
"""A write of its own on the writer's connection, in a transaction it commits (see `run_alone`)."""
Entry = tuple[Draft | Work[Any], asyncio.Future[Any]]

POSTGRES_LANES = 2
"""Batches in flight at once on PostgreSQL: one waiting for its commit, the next being written."""


class Lane:
    """One of the writer's connections, with the statements prepared on it."""

    def __init__(self) -> None:
        self.connection: AsyncConnection | None = None
        self.statements: Statements | None = None


class InFlight:
    """A batch being written on `lane`; `done` ends once every entry of it is answered."""

    def __init__(self, lane: Lane, *, alone: bool) -> None:
        self.lane = lane
        self.alone = alone
        """Work that runs alone: nothing starts beside it."""
        self.commit_sent = False
        self.done: asyncio.Task[None] | None = None


class MessageWriter:
    """Writes the chat messages (and participants' removals) of this node, in batches, in order."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._queue: list[Entry] = []
        self._in_flight: list[InFlight] = []
        """The batches started and not yet answered, oldest first."""
        self._lanes = [Lane() for _ in range(POSTGRES_LANES)]
        self._open = asyncio.Event()
        self._open.set()
        self._queued = asyncio.Event()
        self.checkpoints = Checkpoints()
        """Where tests stop each batch attempt (`Checkpoints`); empty in service."""

    @property
    def _width(self) -> int:
        """How many batches may be in flight at once: one on SQLite, or where the process may hold
        so few connections that a second lane would leave the requests too few."""
        settings = self.ctx.settings
        roomy = settings.database_max_connections >= 2 * POSTGRES_LANES
        return POSTGRES_LANES if not settings.is_sqlite and roomy else 1

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
        self._start_batches()
        # A sender cancelled meanwhile cancels its answer only: its entry is written all the same.
        return await answer

    async def close(self) -> None:
        """Finish the batches already handed over, then give the connections back."""
        self._open.set()
        self._start_batches()
        while self._in_flight:
            await self._finished(self._in_flight[0])
        for lane in self._lanes:
            await self._drop_connection(lane, invalidate=False)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """No batch starts while this is entered; the messages handed over meanwhile are written as one
        batch once it is left (tests form batches with it, see `queued_at_least`)."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()
            self._start_batches()

    async def queued_at_least(self, count: int) -> None:
        """Return once `count` messages wait for the next batch."""
        while len(self._queue) < count:
            self._queued.clear()
            await self._queued.wait()

    def _start_batches(self) -> None:
        """Start the next batch while one may start: when something is handed over, a batch sends its
        commit, or a batch is answered."""
        while self._queue and self._open.is_set() and self._may_start():
            busy = [flight.lane for flight in self._in_flight]
            lane = next(lane for lane in self._lanes if lane not in busy)
            flight = InFlight(lane, alone=not isinstance(self._queue[0][0], Draft))
            ahead = self._in_flight[-1].done if self._in_flight else None
            flight.done = asyncio.create_task(self._flush(self._next_batch(), flight, ahead))
            self._in_flight.append(flight)

    def _may_start(self) -> bool:
        """A lane is free, the newest batch has sent its commit, and neither it nor the next runs alone."""
        if not self._in_flight:
            return True
        newest = self._in_flight[-1]
        alone_next = not isinstance(self._queue[0][0], Draft)
        return (
            len(self._in_flight) < self._width and newest.commit_sent and not newest.alone and not alone_next
        )

    def _commit_sent(self, flight: InFlight) -> None:
        flight.commit_sent = True
        self._start_batches()

    @staticmethod
    async def _finished(flight: InFlight) -> None:
        assert flight.done is not None
        await flight.done

    def _next_batch(self) -> list[Entry]:
        """The messages at the head of the queue (up to BATCH_MAX), or the work there alone."""
        size = 1
        if isinstance(self._queue[0][0], Draft):
            while size < min(len(self._queue), BATCH_MAX) and isinstance(self._queue[size][0], Draft):
                size += 1
        batch, self._queue = self._queue[:size], self._queue[size:]
        return batch

    async def _flush(self, batch: list[Entry], flight: InFlight, ahead: asyncio.Task[None] | None) -> None:
        """Write `batch` on the flight's lane, then answer each entry once the batch ahead is answered."""
        try:
            try:
                answers: list[Any] | AppError = await self._answers(batch, flight)
            except Exception as exc:  # noqa: BLE001 - every sender is answered; the cause is logged once
                answers = self._failure(exc, len(batch))
            if ahead is not None:
                await ahead
            _answer(batch, answers)
        finally:
            self._in_flight.remove(flight)
            self._start_batches()

    async def _answers(self, batch: list[Entry], flight: InFlight) -> list[Any]:
        """Each entry's answer: a message's outcome, or the result of the work that is alone."""
        head = batch[0][0]
        if not isinstance(head, Draft):
            return [await self._on_connection(head, flight)]
        drafts = [item for item, _ in batch if isinstance(item, Draft)]
        self.ctx.metrics.chat_batch_size.observe(len(drafts))
        outcomes = await self._on_connection(partial(self._write_batch, drafts, flight.lane), flight)
        return [outcomes[draft.id] for draft in drafts]

    async def _write_batch(
        self, drafts: list[Draft], lane: Lane, connection: AsyncConnection, attempt: Attempt
    ) -> dict[uuid.UUID, Outcome]:
        if lane.statements is None:
            lane.statements = (
                await PgStatements.on(connection)
                if connection.dialect.name == "postgresql"
                else await SqliteStatements.on(connection)
            )
        return await BatchWrite(lane.statements, drafts, attempt, self.checkpoints).run()

    async def _on_connection(self, work: Work[T], flight: InFlight) -> T:
        """Run `work` on the flight's lane, once more if it failed on a connection that turned out dead
        (on a new one) or lost a race with another transaction (a deadlock with a removal on another
        node)."""
        retried = False
        while True:
            connection = await self._connect(flight.lane)
            attempt = Attempt(on_committing=partial(self._commit_sent, flight))
            try:
                return await work(connection, attempt)
            except Exception as exc:
                conflict = is_transaction_conflict(exc)
                if not conflict:
                    await self._drop_connection(flight.lane, invalidate=True)
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

    async def _connect(self, lane: Lane) -> AsyncConnection:
        if lane.connection is None:
            lane.connection = await self.ctx.db.engine.connect()
        return lane.connection

    @staticmethod
    async def _drop_connection(lane: Lane, *, invalidate: bool) -> None:
        connection, lane.connection = lane.connection, None
        lane.statements = None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:
                await connection.invalidate()
            await connection.close()


def _answer(batch: list[Entry], answers: list[Any] | AppError) -> None:
    """Each entry's answer, or the batch's failure for all of them (each sender a fresh error)."""
    for index, (_, answer) in enumerate(batch):
        if answer.done():
            continue
        if isinstance(answers, AppError):
            answer.set_exception(AppError(answers.code, answers.message))
        else:
            answer.set_result(answers[index])
