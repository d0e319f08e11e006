"""The statements of a batch, run straight on the database: SQLAlchemy Core's and the ones on the
driver's connection (asyncpg's on PostgreSQL, aiosqlite's on SQLite) mean the same: the same rows in,
the same rows out."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import utc_now
from app.core.faults import is_unavailable
from app.modules.chat.batch import Attempt, BatchWrite, Statements
from app.modules.chat.pg_statements import PgStatements
from app.modules.chat.rows import CONVERSATIONS, PARTICIPANTS, Sent
from app.modules.chat.schemas import NotificationOut
from app.modules.chat.sqlite_statements import SqliteStatements
from app.modules.chat.statements import CoreStatements, Draft, MentionSource, NewMessage
from tests.support.backends import Backend
from tests.support.clients import Account, register_and_login
from tests.support.live import make_group, serve_in_process

KINDS = ("core", "driver")


@dataclass
class Scene:
    """Two groups of alice's (bob, muted carol in the first; bob in the second), dave in neither."""

    connection: AsyncConnection
    statements: Statements
    alice: Account
    bob: Account
    carol: Account
    dave: Account
    first: uuid.UUID
    second: uuid.UUID


@pytest.fixture(params=KINDS)
async def scene(request: pytest.FixtureRequest, backend: Backend) -> AsyncIterator[Scene]:
    async with serve_in_process(backend.settings(RATE_LIMIT_ENABLED="false")) as (parley, url):
        async with httpx.AsyncClient(base_url=url, timeout=15) as http:
            alice, bob, carol, dave = [await register_and_login(http) for _ in range(4)]
            first = uuid.UUID(await make_group(http, alice, bob, carol))
            second = uuid.UUID(await make_group(http, alice, bob))
        async with parley.context.db.engine.connect() as connection:
            async with connection.begin():
                await connection.execute(
                    update(PARTICIPANTS)
                    .where(
                        PARTICIPANTS.c.conversation_id == first,
                        PARTICIPANTS.c.user_id == uuid.UUID(carol.user_id),
                    )
                    .values(muted_at=utc_now())
                )
            statements: Statements = CoreStatements(connection)
            if request.param == "driver":
                on_driver = PgStatements.on if backend.name == "postgres" else SqliteStatements.on
                statements = await on_driver(connection)
            yield Scene(connection, statements, alice, bob, carol, dave, first, second)


def uid(account: Account) -> uuid.UUID:
    return uuid.UUID(account.user_id)


async def last_seqs(scene: Scene) -> dict[uuid.UUID, int]:
    async with scene.connection.begin():
        rows = await scene.connection.execute(
            select(CONVERSATIONS.c.id, CONVERSATIONS.c.last_seq).where(
                CONVERSATIONS.c.id.in_([scene.first, scene.second])
            )
        )
        return {row.id: row.last_seq for row in rows}


async def test_seqs_are_taken_where_every_sender_participates(scene: Scene) -> None:
    statements, unknown = scene.statements, uuid.uuid4()
    await statements.begin()
    taken = await statements.take_seqs(
        {scene.first: 3, scene.second: 2, unknown: 1},
        {
            scene.first: {uid(scene.alice), uid(scene.bob)},
            scene.second: {uid(scene.alice)},
            unknown: {uid(scene.alice)},
        },
    )
    await statements.commit()
    assert taken == {scene.first: 3, scene.second: 2}
    await statements.begin()
    refused = await statements.take_seqs(
        {scene.first: 1, scene.second: 1},
        {scene.first: {uid(scene.bob)}, scene.second: {uid(scene.alice), uid(scene.dave)}},
    )
    await statements.commit()
    assert refused == {scene.first: 4}, "dave is in no group: the second conversation is left alone"
    assert await last_seqs(scene) == {scene.first: 4, scene.second: 2}


async def test_a_rolled_back_batch_leaves_nothing(scene: Scene) -> None:
    statements = scene.statements
    await statements.begin()
    assert await statements.take_seqs({scene.first: 1}, {scene.first: {uid(scene.alice)}}) == {scene.first: 1}
    await statements.insert([NewMessage(uuid.uuid4(), scene.first, 1, uid(scene.alice), "gone", "c-1")])
    await statements.rollback()
    await statements.rollback()  # nothing left to roll back: no error
    assert await last_seqs(scene) == {scene.first: 0, scene.second: 0}


async def test_a_client_id_stored_earlier_returns_the_stored_message(scene: Scene) -> None:
    statements, alice = scene.statements, uid(scene.alice)
    kept = NewMessage(uuid.uuid4(), scene.first, 1, alice, "hello", "c-1")
    await statements.begin()
    [stored] = await statements.insert([kept])
    await statements.commit()
    assert tuple(stored)[:7] == (kept.id, scene.first, 1, alice, "text", "hello", "c-1")
    again = NewMessage(uuid.uuid4(), scene.first, 2, alice, "hello again", "c-1")
    fresh = NewMessage(uuid.uuid4(), scene.first, 2, alice, "new", "c-2")
    await statements.begin()
    rows = {row[0]: tuple(row) for row in await statements.insert([again, fresh])}
    await statements.rollback()
    assert rows.keys() == {kept.id, fresh.id}, "the re-sent id answers with the stored message"
    assert rows[kept.id] == tuple(stored)
    assert rows[fresh.id][:7] == (fresh.id, scene.first, 2, alice, "text", "new", "c-2")


def everyone_mentioned(scene: Scene) -> tuple[list[str], dict[str, uuid.UUID]]:
    """The four accounts' names (and one nobody has), each with a notification id."""
    names = [account.username.lower() for account in (scene.alice, scene.bob, scene.carol, scene.dave)]
    return names, {name: uuid.uuid4() for name in [*names, "nobody"]}


def mention_notice(data: dict[str, Any]) -> NotificationOut:
    return NotificationOut(
        id="",
        kind="mention",
        title="Alice mentioned you",
        body="hi all",
        data=data,
        created_at=dt.datetime.now(dt.UTC),
    )


async def test_mentions_notify_unmuted_participants_but_the_sender(scene: Scene) -> None:
    statements, alice = scene.statements, uid(scene.alice)
    message = NewMessage(uuid.uuid4(), scene.first, 1, alice, "hi all", "c-1")
    names, ids = everyone_mentioned(scene)
    notice = mention_notice(data={"seq": 1})
    await statements.begin()
    await statements.take_seqs({scene.first: 1}, {scene.first: {alice}})
    await statements.insert([message])
    rows = list(await statements.notify([MentionSource(scene.first, message.id, alice, notice, ids)]))
    await statements.commit()
    assert [(row[0], row[1]) for row in rows] == [(ids[names[1]], uid(scene.bob))], "bob alone"
    assert rows[0][2] is not None


async def test_a_failure_on_the_driver_is_sqlalchemys_error(scene: Scene) -> None:
    if isinstance(scene.statements, PgStatements | SqliteStatements):
        driver_error: type[Exception] = (
            asyncpg.ForeignKeyViolationError
            if isinstance(scene.statements, PgStatements)
            else sqlite3.IntegrityError
        )
    else:
        pytest.skip("SQLAlchemy raises its own errors on the Core statements")
    statements, alice = scene.statements, uid(scene.alice)
    await statements.begin()
    with pytest.raises(DBAPIError) as raised:
        await statements.insert([NewMessage(uuid.uuid4(), uuid.uuid4(), 1, alice, "lost", "c-1")])
    assert isinstance(raised.value.orig, driver_error)
    assert not raised.value.connection_invalidated
    assert not is_unavailable(raised.value), "a bug, not the database away"
    await statements.rollback()
    assert await last_seqs(scene) == {scene.first: 0, scene.second: 0}


async def test_a_closed_driver_connection_is_invalidated(scene: Scene) -> None:
    if not isinstance(scene.statements, PgStatements):
        pytest.skip("asyncpg's connection is the one that a database away closes")
    await scene.statements.driver.close()
    with pytest.raises(DBAPIError) as raised:
        await scene.statements.begin()
    assert raised.value.connection_invalidated
    assert is_unavailable(raised.value)
    await scene.connection.invalidate()


def draft(conversation: uuid.UUID, sender: Account, body: str, client_msg_id: str) -> Draft:
    return Draft(conversation, uid(sender), body, client_msg_id, sender.username)


async def test_a_batch_is_stored_at_once_whole_or_not_at_all(scene: Scene) -> None:
    """PostgreSQL's one statement and SQLite's one hand-over answer alike; SQLAlchemy Core has no such
    way, and SQLite leaves a batch with a mention to the transaction."""
    statements = scene.statements
    kept = draft(scene.first, scene.alice, "kept", "k-1")
    if type(statements) is CoreStatements:
        assert await statements.store_at_once([kept], []) is None, "no such way: the transaction writes"
        return
    if isinstance(statements, SqliteStatements):
        mention = MentionSource(
            scene.first, kept.id, kept.sender_id, mention_notice({}), {"bob": uuid.uuid4()}
        )
        assert await statements.store_at_once([kept], [mention]) is None, "the transaction notifies"
        assert await last_seqs(scene) == {scene.first: 0, scene.second: 0}, "and nothing is stored"
    assert [row[0] for row in await statements.store_at_once([kept], []) or []] == [None]
    lost_answer = Draft(kept.conversation_id, kept.sender_id, "kept", "k-1", "", id=kept.id)
    resent = draft(scene.first, scene.alice, "kept again", "k-1")
    batch = [
        draft(scene.first, scene.bob, "one", "b-1"),
        lost_answer,
        draft(scene.second, scene.alice, "elsewhere", "a-1"),
        resent,
        draft(scene.first, scene.alice, "two", "a-2"),
    ]
    rows = {row[0]: tuple(row[1:]) for row in await statements.store_at_once(batch, []) or []}
    assert rows.keys() == {None, lost_answer.id, resent.id}
    assert rows[lost_answer.id][:3] == rows[resent.id][:3] == (kept.id, scene.first, 1), (
        "a client id stored earlier answers with the stored message, under the draft that asked"
    )
    assert await last_seqs(scene) == {scene.first: 3, scene.second: 1}, "seqs for the new messages only"
    refused = [draft(scene.second, scene.bob, "fine", "b-2"), draft(scene.first, scene.dave, "no", "d-1")]
    assert await statements.store_at_once(refused, []) is None, "dave is not a participant"
    assert await last_seqs(scene) == {scene.first: 3, scene.second: 1}, "nothing of that batch stored"


async def test_a_message_stored_by_an_attempt_whose_answer_was_lost_is_answered_as_stored(
    scene: Scene,
) -> None:
    """Written again in a transaction (a test checkpoint keeps the batch off the one statement), the
    message found under its own id is answered as stored, with its seq, and no seq is taken again."""
    statements, alice = scene.statements, uid(scene.alice)
    lost = draft(scene.first, scene.alice, "lost answer", "l-1")
    await statements.begin()
    await statements.take_seqs({scene.first: 1}, {scene.first: {alice}})
    await statements.insert([NewMessage(lost.id, scene.first, 1, alice, lost.body, lost.client_msg_id)])
    await statements.commit()
    fresh = draft(scene.first, scene.bob, "fresh", "b-1")

    async def no_stop() -> None:
        return None

    outcomes = await BatchWrite(statements, [lost, fresh], Attempt(), checkpoint=no_stop).run()
    lost_outcome, fresh_outcome = outcomes[lost.id], outcomes[fresh.id]
    assert isinstance(lost_outcome, Sent), lost_outcome
    assert isinstance(fresh_outcome, Sent), fresh_outcome
    assert lost_outcome.stored, "answered as stored now, so that it is broadcast once"
    assert (lost_outcome.message.seq, fresh_outcome.message.seq) == (1, 2)
    assert await last_seqs(scene) == {scene.first: 2, scene.second: 0}


async def test_one_statement_notifies_unmuted_participants_but_the_sender(scene: Scene) -> None:
    if not isinstance(scene.statements, PgStatements):
        pytest.skip("the one statement is PostgreSQL's")
    message = draft(scene.first, scene.alice, "hi all", "m-1")
    names, ids = everyone_mentioned(scene)
    source = MentionSource(scene.first, message.id, uid(scene.alice), mention_notice(data={}), ids)
    [row] = await scene.statements.store_at_once([message], [source]) or []
    assert row[0] is None
    assert row[1] == message.id
    assert (row[9], row[10]) == ([ids[names[1]]], [uid(scene.bob)]), "bob alone"
    stored = await scene.statements.driver.fetchrow(
        "SELECT data, conversation_id, message_id FROM notifications WHERE id = $1", ids[names[1]]
    )
    assert stored["data"] == {
        "conversation_id": str(scene.first),
        "message_id": str(message.id),
        "seq": 1,
    }
    assert (stored["conversation_id"], stored["message_id"]) == (scene.first, message.id)
    [plain] = await scene.statements.store_at_once([draft(scene.first, scene.bob, "plain", "p-1")], []) or []
    assert plain[9:] == (None, None, None), "no mention, no notification"
