"""The token check of a socket connect, on both backends, against the database a server writes to."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from app.core.context import AppContext
from app.core.db import Database
from app.core.errors import AppError, ErrorCode
from app.core.security.tokens import TokenCodec
from app.core.state import MemoryStateBackend
from app.modules.accounts.auth import AccountsAuthenticator
from app.modules.accounts.holders import LiveSessions, TokenHolders
from app.modules.accounts.models import LoginSession
from app.modules.accounts.sessions import SessionStore
from tests.support.accounts import client_for
from tests.support.backends import Backend
from tests.support.clients import Account, register_and_login

PATIENCE = 5.0
"""Seconds a check may take while a writer holds the database; SQLite's busy timeout is twice that."""


@pytest.fixture
async def account(backend: Backend) -> Account:
    async with client_for(backend) as client:
        return await register_and_login(client)


@pytest.fixture
async def authenticator(backend: Backend) -> AsyncIterator[AccountsAuthenticator]:
    """A node's check with nothing kept yet, as after a restart: every session is read."""
    settings = backend.settings()
    db = Database(settings)
    ctx = AppContext(settings, db, MemoryStateBackend(), TokenCodec(settings.jwt))
    yield AccountsAuthenticator(ctx, SessionStore(settings.jwt), TokenHolders(), LiveSessions())
    await db.dispose()


async def test_a_session_is_checked_while_a_writer_holds_the_database(
    account: Account, authenticator: AccountsAuthenticator
) -> None:
    """A reconnect storm's session checks only read: on SQLite they do not queue for the write lock
    behind chat writes (each waited for it, up to the busy timeout, when it ran in a transaction)."""
    async with authenticator.ctx.db.session_maker() as writer:
        await writer.execute(
            update(LoginSession).where(LoginSession.id == uuid.uuid4()).values(device="elsewhere")
        )
        identity = await asyncio.wait_for(authenticator.authenticate(account.access_token), PATIENCE)
        await writer.rollback()
    assert (str(identity.user_id), identity.session_id) == (account.user_id, account.session_id)


async def test_a_revoked_session_is_refused(account: Account, authenticator: AccountsAuthenticator) -> None:
    async with authenticator.ctx.db.session_maker() as writer:
        await writer.execute(
            update(LoginSession)
            .where(LoginSession.id == uuid.UUID(account.session_id))
            .values(revoked_at=LoginSession.created_at)
        )
        await writer.commit()
    with pytest.raises(AppError) as refused:
        await authenticator.authenticate(account.access_token)
    assert refused.value.code is ErrorCode.SESSION_REVOKED
