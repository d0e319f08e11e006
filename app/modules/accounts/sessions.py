"""Login sessions in the database: the truth every node reads, written only by guarded statements.

A refresh token is `{session id}.{family secret}.{rotating secret}` (see `LoginSession`); only
digests are stored. Each operation is one transaction that a racing one cannot undo:

- open: the user's row is locked (PostgreSQL; SQLite's `BEGIN IMMEDIATE` serializes every writer),
  then the sessions the login policy replaces are revoked and the new one is inserted, so two
  logins at the same instant see each other;
- rotate: one UPDATE that matches the current digest of a live, unexpired session, so of two racing
  refreshes exactly one wins, and a revoked session never matches again;
- revoke: one UPDATE of live sessions that answers which ones it ended.

A refresh token that carries the session's family secret but not its current secret was rotated
away and is being used again: the session is revoked (OAuth 2.0 Security BCP). The one exception is
the token replaced less than `REFRESH_REUSE_GRACE` seconds ago: that is a refresh that lost a race
against another with the same token, refused without ending the session the winner continues.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config.settings import JwtSettings, LoginPolicy
from app.core.db import utc_now
from app.core.db.driver_reads import DriverReads
from app.modules.accounts.models import LoginSession, User

SESSIONS: Any = LoginSession.__table__
USERS: Any = User.__table__
EndReason = Literal["logout", "duplicate_login", "admin", "refresh_reuse"]
"""Why a session ended, as stored in `sessions.revoked_reason`."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: uuid.UUID
    device: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """The user an access token speaks for, as a token check needs them."""

    user_id: uuid.UUID
    username: str
    display_name: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class Opened:
    record: SessionRecord
    refresh_token: str
    superseded: list[str]
    """Sessions of the same user that this login revoked under the login policy."""


@dataclass(frozen=True, slots=True)
class Rotated:
    record: SessionRecord
    refresh_token: str


@dataclass(frozen=True, slots=True)
class Reused:
    """A rotated refresh token came back; its session has been revoked."""

    session_id: str
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PresentedToken:
    session_id: uuid.UUID
    family_hash: str
    secret_hash: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_refresh_token(token: str) -> PresentedToken | None:
    """The parts of `{session id}.{family}.{secret}`; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        session_id = uuid.UUID(parts[0])
    except ValueError:
        return None
    return PresentedToken(session_id, digest(parts[1]), digest(parts[2]))


def parse_session_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SessionStore:
    """Session operations on the caller's database session: inside a request its own (SQLite lets one
    transaction write at a time), elsewhere a unit of work's. Each write commits before it returns."""

    def __init__(self, settings: JwtSettings) -> None:
        self.ttl = dt.timedelta(seconds=settings.refresh_ttl)
        self.reuse_grace = dt.timedelta(seconds=settings.refresh_reuse_grace)

    async def open(self, db: AsyncSession, owner: uuid.UUID, device: str, policy: LoginPolicy) -> Opened:
        """A new session for user `owner` on `device`, revoking what `policy` says it replaces."""
        session_id = uuid.uuid4()
        family, secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = now_utc()
        await db.execute(select(USERS.c.id).where(USERS.c.id == owner).with_for_update())
        await db.execute(
            delete(SESSIONS).where(
                SESSIONS.c.user_id == owner,
                or_(SESSIONS.c.revoked_at.is_not(None), SESSIONS.c.expires_at <= now),
            )
        )
        superseded: list[str] = []
        if policy != "multi":
            replaced = [SESSIONS.c.user_id == owner, SESSIONS.c.revoked_at.is_(None)]
            if policy == "single_per_device":
                replaced.append(SESSIONS.c.device == device)
            ended = await db.execute(self._end(now, "duplicate_login").where(*replaced))
            superseded = [str(sid) for sid in ended.scalars()]
        await db.execute(
            insert(SESSIONS).values(
                id=session_id,
                user_id=owner,
                device=device,
                expires_at=now + self.ttl,
                family_hash=digest(family),
                refresh_hash=digest(secret),
            )
        )
        await db.commit()
        record = SessionRecord(str(session_id), owner, device, now + self.ttl)
        return Opened(record, f"{session_id}.{family}.{secret}", superseded)

    async def rotate(self, db: AsyncSession, refresh_token: str) -> Rotated | Reused | None:
        """Exchange a refresh token for the next one; None if it is unknown, revoked or expired."""
        presented = parse_refresh_token(refresh_token)
        if presented is None:
            return None
        secret = secrets.token_urlsafe(32)
        now = now_utc()
        statement = (
            update(SESSIONS)
            .where(
                SESSIONS.c.id == presented.session_id,
                SESSIONS.c.family_hash == presented.family_hash,
                SESSIONS.c.refresh_hash == presented.secret_hash,
                SESSIONS.c.revoked_at.is_(None),
                SESSIONS.c.expires_at > now,
            )
            .values(
                refresh_hash=digest(secret),
                previous_hash=SESSIONS.c.refresh_hash,
                rotated_at=now,
                expires_at=now + self.ttl,
                updated_at=utc_now(),
            )
            .returning(SESSIONS.c.user_id, SESSIONS.c.device, SESSIONS.c.expires_at)
        )
        row = (await db.execute(statement)).one_or_none()
        if row is None:
            reused = await self._replayed(db, presented, now)
            await db.commit()
            return reused
        await db.commit()
        record = SessionRecord(str(presented.session_id), row.user_id, row.device, row.expires_at)
        family = refresh_token.split(".")[1]
        return Rotated(record, f"{presented.session_id}.{family}.{secret}")

    async def _replayed(self, db: AsyncSession, presented: PresentedToken, now: dt.datetime) -> Reused | None:
        """Tell a replayed rotated token (revoke its session) from a forged, stale or racing one."""
        statement = select(
            SESSIONS.c.user_id, SESSIONS.c.family_hash, SESSIONS.c.previous_hash, SESSIONS.c.rotated_at
        ).where(
            SESSIONS.c.id == presented.session_id,
            SESSIONS.c.revoked_at.is_(None),
            SESSIONS.c.expires_at > now,
        )
        row = (await db.execute(statement)).one_or_none()
        if row is None or not hmac.compare_digest(row.family_hash, presented.family_hash):
            return None
        lost_a_race = (
            row.previous_hash == presented.secret_hash
            and row.rotated_at is not None
            and row.rotated_at > now - self.reuse_grace
        )
        if lost_a_race:
            return None
        ended = await db.execute(
            self._end(now, "refresh_reuse").where(
                SESSIONS.c.id == presented.session_id, SESSIONS.c.revoked_at.is_(None)
            )
        )
        if ended.one_or_none() is None:
            return None
        return Reused(str(presented.session_id), row.user_id)

    async def revoke(
        self, db: AsyncSession, user_id: uuid.UUID, session_ids: list[str], reason: EndReason
    ) -> list[str]:
        """End these live sessions of `user_id`; answer the ones this call ended."""
        ids = [sid for sid in (parse_session_id(text) for text in session_ids) if sid is not None]
        if not ids:
            return []
        ended = await db.execute(
            self._end(now_utc(), reason).where(
                SESSIONS.c.user_id == user_id,
                SESSIONS.c.id.in_(ids),
                SESSIONS.c.revoked_at.is_(None),
            )
        )
        revoked = [str(sid) for sid in ended.scalars()]
        await db.commit()
        return revoked

    async def revoke_all(self, db: AsyncSession, user_id: uuid.UUID, reason: EndReason) -> list[str]:
        """End every live session of `user_id`; answer the ones this call ended."""
        now = now_utc()
        ended = await db.execute(
            self._end(now, reason).where(
                SESSIONS.c.user_id == user_id,
                SESSIONS.c.revoked_at.is_(None),
                SESSIONS.c.expires_at > now,
            )
        )
        revoked = [str(sid) for sid in ended.scalars()]
        await db.commit()
        return revoked

    @staticmethod
    def _end(now: dt.datetime, reason: EndReason) -> Any:
        """The UPDATE that revokes sessions (the caller adds which), returning their ids."""
        return (
            update(SESSIONS)
            .values(revoked_at=now, revoked_reason=reason, updated_at=utc_now())
            .returning(SESSIONS.c.id)
        )

    async def live(self, db: AsyncSession, session_id: str) -> SessionRecord | None:
        """The session if it is neither revoked nor expired."""
        key = parse_session_id(session_id)
        if key is None:
            return None
        statement = select(SESSIONS.c.user_id, SESSIONS.c.device, SESSIONS.c.expires_at).where(
            SESSIONS.c.id == key, SESSIONS.c.revoked_at.is_(None), SESSIONS.c.expires_at > now_utc()
        )
        row = (await db.execute(statement)).one_or_none()
        return SessionRecord(session_id, row.user_id, row.device, row.expires_at) if row else None

    async def holder(
        self, reads: DriverReads, session_id: str, user_id: str
    ) -> tuple[TokenHolder, dt.datetime] | None:
        """The user of a live session, if that is `user_id`, and the session's expiry: one statement on
        the driver's connection (every socket connect of a session not checked lately runs it)."""
        key, owner = parse_session_id(session_id), parse_session_id(user_id)
        if key is None or owner is None:
            return None
        found = await reads.rows(_HOLDER, {"session_id": key, "user_id": owner, "now": now_utc()})
        if not found:
            return None
        row = found[0]
        return TokenHolder(row.id, row.username, row.display_name, bool(row.is_admin)), row.expires_at


_HOLDER = (
    select(USERS.c.id, USERS.c.username, USERS.c.display_name, USERS.c.is_admin, SESSIONS.c.expires_at)
    .join(SESSIONS, SESSIONS.c.user_id == USERS.c.id)
    .where(
        SESSIONS.c.id == bindparam("session_id", type_=SESSIONS.c.id.type),
        SESSIONS.c.user_id == bindparam("user_id", type_=SESSIONS.c.user_id.type),
        SESSIONS.c.revoked_at.is_(None),
        SESSIONS.c.expires_at > bindparam("now", type_=SESSIONS.c.expires_at.type),
    )
)
"""`SessionStore.holder`'s statement, built once."""
