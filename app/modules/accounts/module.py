"""Accounts: users, login sessions, tokens; provides the app's Authenticator."""

from __future__ import annotations

from app.core.context import AppContext
from app.core.module import Module
from app.core.security.identity import Authenticator
from app.core.socket.rooms import SESSION_ROOMS
from app.modules.accounts.auth import AccountsAuthenticator, AuthFlows
from app.modules.accounts.controller import AdminUsersController, AuthController
from app.modules.accounts.deps import DEPENDENCIES
from app.modules.accounts.endings import SessionEndings
from app.modules.accounts.holders import LiveSessions, TokenHolders
from app.modules.accounts.room_hooks import session_hook
from app.modules.accounts.sessions import SessionStore
from app.modules.accounts.users import UsersController


def _sessions(ctx: AppContext) -> SessionStore:
    return SessionStore(ctx.settings.jwt)


def _authenticator(ctx: AppContext) -> AccountsAuthenticator:
    return AccountsAuthenticator(ctx, ctx.get(SessionStore), ctx.get(TokenHolders), ctx.get(LiveSessions))


def _endings(ctx: AppContext) -> SessionEndings:
    return SessionEndings(ctx, ctx.get(LiveSessions))


async def _start_endings(ctx: AppContext) -> None:
    await ctx.get(SessionEndings).start()


def _flows(ctx: AppContext) -> AuthFlows:
    return AuthFlows(ctx, ctx.get(SessionStore))


accounts_module = Module(
    name="accounts",
    controllers=[AuthController, AdminUsersController, UsersController],
    dependencies=DEPENDENCIES,
    providers={
        SessionStore: _sessions,
        TokenHolders: lambda _ctx: TokenHolders(),
        LiveSessions: lambda _ctx: LiveSessions(),
        SessionEndings: _endings,
        Authenticator: _authenticator,
        AuthFlows: _flows,
    },
    room_hooks={SESSION_ROOMS.prefix: session_hook},
    on_startup=[_start_endings],
)
