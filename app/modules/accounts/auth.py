"""Authentication: verify tokens into identities; log in, refresh, log out and revoke sessions."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from app.core.context import AppContext
from app.core.errors import AppError, ErrorCode
from app.core.security.domain_events import RevocationReason, SessionsRevoked
from app.core.security.identity import Identity
from app.core.security.tokens import AccessClaims
from app.modules.accounts.holders import LiveSessions, TokenHolders
from app.modules.accounts.models import User
from app.modules.accounts.schemas import TokenPair, UserOut
from app.modules.accounts.service import UserService, external_user_id
from app.modules.accounts.sessions import (
    Reused,
    SessionRecord,
    SessionStore,
    TokenHolder,
    parse_session_id,
)

logger = logging.getLogger(__name__)

DEFAULT_DEVICE = "default"


def user_out(user: User) -> UserOut:
    return UserOut(id=str(user.id), username=user.username, display_name=user.display_name)


class AccountsAuthenticator:
    """The app's `Authenticator`: JWT, then the live session and its user in one statement (or, for a
    token without a session, the user, provisioned on first sight). Both are kept in process
    (`holders.py`): checking a token of a session or user seen recently reads no database."""

    def __init__(
        self, ctx: AppContext, sessions: SessionStore, holders: TokenHolders, live: LiveSessions
    ) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.holders = holders
        self.live = live

    async def authenticate(self, token: str) -> Identity:
        claims = self.ctx.tokens.verify(token)
        holder = self._kept(claims) or await self._read(claims)
        return Identity(
            user_id=holder.user_id,
            session_id=claims.session_id,
            expires_at=claims.expires_at,
            username=holder.username,
            display_name=holder.display_name,
            is_admin=holder.is_admin,
        )

    def _kept(self, claims: AccessClaims) -> TokenHolder | None:
        """The holder from memory when that settles the check; None when the database must."""
        if claims.session_id is None:
            return self.holders.get(external_user_id(claims.subject, self.ctx.settings.jwt.issuer))
        owner = self.live.owner(claims.session_id, dt.datetime.now(dt.UTC))
        if owner is None or owner != parse_session_id(claims.subject):
            return None
        return self.holders.get(owner)

    async def _read(self, claims: AccessClaims) -> TokenHolder:
        if claims.session_id is None:
            async with self.ctx.unit_of_work() as uow:
                issuer = self.ctx.settings.jwt.issuer
                user = await uow.service(UserService).provision_external(claims.subject, issuer, claims.raw)
                holder = TokenHolder(user.id, user.username, user.display_name, user.is_admin)
        else:
            drops = self.live.drops
            found = await self.sessions.holder(self.ctx.db.reads, claims.session_id, claims.subject)
            if found is None:
                raise AppError(ErrorCode.SESSION_REVOKED, "This session has been revoked; log in again")
            holder, expires_at = found
            self.live.keep(claims.session_id, holder.user_id, expires_at, drops)
        self.holders.keep(holder)
        return holder


class AuthFlows:
    """Log in, refresh, log out and force out; every session that ends is announced (`SessionsRevoked`),
    and the socket layer disconnects its sockets on every node."""

    def __init__(self, ctx: AppContext, sessions: SessionStore) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def _pair(self, user: User, record: SessionRecord, refresh_token: str) -> TokenPair:
        jwt = self.ctx.settings.jwt
        lifetime = min(jwt.access_ttl, jwt.refresh_ttl)
        access, _ = self.ctx.tokens.issue(str(user.id), record.id, ttl=lifetime)
        return TokenPair(
            access_token=access,
            refresh_token=refresh_token,
            token_type="Bearer",
            expires_in=lifetime,
            session_id=record.id,
            user=user_out(user),
        )

    async def login(self, users: UserService, username: str, password: str, device: str | None) -> TokenPair:
        user = await users.authenticate_password(username, password)
        policy = self.ctx.settings.login_policy
        opened = await self.sessions.open(users.repository.session, user.id, device or DEFAULT_DEVICE, policy)
        await self._announce(user.id, opened.superseded, "duplicate_login", "You logged in somewhere else")
        return self._pair(user, opened.record, opened.refresh_token)

    async def refresh(self, users: UserService, refresh_token: str) -> TokenPair:
        rotated = await self.sessions.rotate(users.repository.session, refresh_token)
        if isinstance(rotated, Reused):
            logger.warning(
                "a rotated refresh token of session %s was used again; the session is revoked",
                rotated.session_id,
                extra={"user_id": rotated.user_id},
            )
            await self._announce(
                rotated.user_id,
                [rotated.session_id],
                "session_revoked",
                "Your session was ended because one of its refresh tokens was used twice",
            )
            raise AppError(ErrorCode.UNAUTHORIZED, "This refresh token was already used; log in again")
        if rotated is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Invalid or already used refresh token")
        user = await users.by_id(rotated.record.user_id)
        if user is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Unknown user")
        return self._pair(user, rotated.record, rotated.refresh_token)

    async def logout(self, users: UserService, identity: Identity) -> None:
        if identity.session_id is None:
            raise AppError(ErrorCode.VALIDATION_ERROR, "This token has no session to log out of")
        db = users.repository.session
        ended = await self.sessions.revoke(db, identity.user_id, [identity.session_id], "logout")
        await self._announce(identity.user_id, ended, "logout", "You logged out")

    async def force_logout(self, users: UserService, user_id: uuid.UUID) -> int:
        """Revoke every session of a user and disconnect all their sockets (`reason: admin`)."""
        ended = await self.sessions.revoke_all(users.repository.session, user_id, "admin")
        revoked = SessionsRevoked(
            user_id, tuple(ended), "admin", "An administrator signed you out", all_sockets=True
        )
        await self.ctx.events.publish(revoked)
        return len(ended)

    async def _announce(
        self, user_id: uuid.UUID, session_ids: list[str], reason: RevocationReason, message: str
    ) -> None:
        if session_ids:
            await self.ctx.events.publish(SessionsRevoked(user_id, tuple(session_ids), reason, message))
