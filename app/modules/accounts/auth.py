"""Authentication: verify tokens into identities; log in, refresh, log out and revoke sessions."""

from __future__ import annotations

from app.core.context import AppContext
from app.core.errors import AppError, ErrorCode
from app.core.security.events import RevocationReason, SessionsRevoked
from app.core.security.identity import Identity
from app.modules.accounts.models import User
from app.modules.accounts.schemas import TokenPair, UserOut
from app.modules.accounts.service import UserService
from app.modules.accounts.sessions import SessionRecord, SessionStore

DEFAULT_DEVICE = "default"


def user_out(user: User) -> UserOut:
    return UserOut(id=str(user.id), username=user.username, display_name=user.display_name)


class AccountsAuthenticator:
    """The app's `Authenticator`: JWT + live session check + user lookup (or provisioning)."""

    def __init__(self, ctx: AppContext, sessions: SessionStore) -> None:
        self.ctx = ctx
        self.sessions = sessions

    async def authenticate(self, token: str) -> Identity:
        claims = self.ctx.tokens.verify(token)
        if claims.session_id is not None:
            record = await self.sessions.get(claims.session_id)
            if record is None or record.user_id != claims.subject:
                raise AppError(ErrorCode.SESSION_REVOKED, "This session has been revoked; log in again")
        async with self.ctx.unit_of_work() as uow:
            users = uow.service(UserService)
            user = await users.by_id(claims.subject)
            if user is None and claims.session_id is None:
                user = await users.provision_external(
                    claims.subject, self.ctx.settings.jwt.issuer, claims.raw
                )
        if user is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Unknown user")
        return Identity(
            user_id=str(user.id),
            session_id=claims.session_id,
            expires_at=claims.expires_at,
            username=user.username,
            display_name=user.display_name,
            is_admin=user.is_admin,
        )


class AuthFlows:
    def __init__(self, ctx: AppContext, sessions: SessionStore) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def _pair(self, user: User, record: SessionRecord, refresh_token: str) -> TokenPair:
        access, _ = self.ctx.tokens.issue(str(user.id), record.id)
        return TokenPair(
            access_token=access,
            refresh_token=refresh_token,
            token_type="Bearer",
            expires_in=self.ctx.settings.jwt.access_ttl,
            session_id=record.id,
            user=user_out(user),
        )

    async def login(self, users: UserService, username: str, password: str, device: str | None) -> TokenPair:
        user = await users.authenticate_password(username, password)
        user_id = str(user.id)
        device = device or DEFAULT_DEVICE
        superseded = await self.sessions.superseded_by_login(user_id, device, self.ctx.settings.login_policy)
        record, refresh_token = await self.sessions.create(user_id, device)
        await self.revoke(user_id, superseded, "duplicate_login", "You logged in somewhere else")
        return self._pair(user, record, refresh_token)

    async def refresh(self, users: UserService, refresh_token: str) -> TokenPair:
        rotated = await self.sessions.rotate(refresh_token)
        if rotated is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Invalid or already used refresh token")
        record, new_refresh = rotated
        user = await users.by_id(record.user_id)
        if user is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Unknown user")
        return self._pair(user, record, new_refresh)

    async def logout(self, identity: Identity) -> None:
        if identity.session_id is None:
            raise AppError(ErrorCode.VALIDATION_ERROR, "This token has no session to log out of")
        await self.revoke(identity.user_id, [identity.session_id], "logout", "You logged out")

    async def force_logout(self, user_id: str) -> int:
        """Revoke every session of a user and disconnect all their sockets (`reason: admin`)."""
        ids = [s.id for s in await self.sessions.for_user(user_id)]
        await self.sessions.revoke(user_id, ids)
        await self.ctx.events.publish(
            SessionsRevoked(user_id, tuple(ids), "admin", "An administrator signed you out", all_sockets=True)
        )
        return len(ids)

    async def revoke(
        self, user_id: str, session_ids: list[str], reason: RevocationReason, message: str
    ) -> None:
        if not session_ids:
            return
        await self.sessions.revoke(user_id, session_ids)
        await self.ctx.events.publish(SessionsRevoked(user_id, tuple(session_ids), reason, message))
