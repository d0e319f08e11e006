"""Accounts: users (a repository service that owns its queries) and authentication."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from app.core.db import utc_now
from app.core.errors import AppError, ErrorCode
from app.modules.accounts.models import USERNAME_MAX, User
from app.modules.accounts.policy import check_password, username_skeleton

EXTERNAL_NAMESPACE = uuid.UUID("5b3c2f7e-2d7a-4d55-9a53-7f0f0e5b7c11")
_hasher = PasswordHasher()
# Verified against when the user does not exist, so both failures take the same time. Written out
# rather than hashed at import, which cost every process that imports accounts a whole argon2 hash;
# a test checks it still carries the hasher's parameters.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$ikPLtFDh05/EeIj+vAKU0w$CbrnpedasB6qwS7758U/QhPTCH6mPsAfGv6GcxiG69o"
)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def external_user_id(subject: str, issuer: str | None) -> uuid.UUID:
    """The id of the user behind an external token's `sub`: the subject itself when it is a UUID."""
    try:
        return uuid.UUID(subject)
    except ValueError:
        return uuid.uuid5(EXTERNAL_NAMESPACE, f"{issuer or ''}|{subject}")


class UserService(SQLAlchemyAsyncRepositoryService[User]):
    class Repo(SQLAlchemyAsyncRepository[User]):
        model_type = User

    repository_type = Repo

    async def by_username(self, username: str) -> User | None:
        statement = select(User).where(func.lower(User.username) == username.lower())
        user: User | None = (await self.repository.session.execute(statement)).scalar_one_or_none()
        return user

    async def by_id(self, user_id: uuid.UUID) -> User | None:
        user: User | None = await self.repository.session.get(User, user_id)
        return user

    async def _check_name_free(self, username: str, skeleton: str) -> None:
        """CONFLICT on `username` if it is taken, in any case, or looks like a name that is."""
        statement = select(User.username).where(
            or_(func.lower(User.username) == username.lower(), User.username_skeleton == skeleton)
        )
        existing = (await self.repository.session.execute(statement.limit(1))).scalar_one_or_none()
        if existing is None:
            return
        if existing.lower() == username.lower():
            raise AppError(ErrorCode.CONFLICT, "That username is taken", {"field": "username"})
        raise AppError(
            ErrorCode.CONFLICT,
            "That username looks like another user's; choose another",
            {"field": "username"},
        )

    async def register(
        self, username: str, password: str, display_name: str | None, *, is_admin: bool = False
    ) -> User:
        """A new account; the password policy and the look-alike rule apply (one query before the insert)."""
        check_password(password, username)
        skeleton = username_skeleton(username)
        await self._check_name_free(username, skeleton)
        user = User(
            username=username,
            username_skeleton=skeleton,
            display_name=display_name or username,
            password_hash=await hash_password(password),
            is_admin=is_admin,
        )
        self.repository.session.add(user)
        try:
            await self.repository.session.commit()
        except IntegrityError:
            await self.repository.session.rollback()
            raise AppError(ErrorCode.CONFLICT, "That username is taken", {"field": "username"}) from None
        await self.repository.session.refresh(user)
        return user

    async def authenticate_password(self, username: str, password: str) -> User:
        """The user, or one UNAUTHORIZED for unknown user and wrong password alike."""
        user = await self.by_username(username)
        if not await verify_password(user.password_hash if user else None, password) or user is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Wrong username or password")
        return user

    async def provision_external(self, subject: str, issuer: str | None, claims: dict[str, Any]) -> User:
        """The user behind an external token's `sub`, created on first sight (idempotent on every node)."""
        user_id = external_user_id(subject, issuer)
        existing: User | None = await self.repository.session.get(User, user_id)
        if existing is not None:
            return existing
        wanted = str(claims.get("preferred_username") or claims.get("name") or f"user-{user_id.hex[:8]}")
        base = "".join(ch for ch in wanted if ch.isalnum() or ch in "_.-")[: USERNAME_MAX - 9] or "user"
        display = str(claims.get("name") or wanted)[:100]
        for attempt in range(3):
            username = base if attempt == 0 else f"{base}-{uuid.uuid4().hex[:8]}"
            if len(username) < 3:
                username = f"{username}-{user_id.hex[:6]}"
            inserted = await self._insert_ignore(user_id, username, display, subject)
            if inserted:
                break
            found: User | None = await self.repository.session.get(User, user_id)
            if found is not None:
                return found
        await self.repository.session.commit()
        user: User | None = await self.repository.session.get(User, user_id)
        if user is None:
            raise AppError(ErrorCode.INTERNAL, "Could not provision the user")
        return user

    async def _insert_ignore(self, user_id: uuid.UUID, username: str, display: str, subject: str) -> bool:
        dialect = self.repository.session.bind.dialect.name if self.repository.session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        values = {
            "id": user_id,
            "username": username,
            "username_skeleton": username_skeleton(username),
            "display_name": display,
            "external_subject": subject,
            "is_admin": False,
        }
        try:
            async with self.repository.session.begin_nested():
                result = await self.repository.session.execute(
                    insert(User).values(**values).on_conflict_do_nothing(index_elements=["id"])
                )
        except IntegrityError:
            return False
        return bool(result.rowcount)

    async def touch_last_seen(self, user_id: uuid.UUID) -> None:
        await self.repository.session.execute(
            update(User).where(User.id == user_id).values(last_seen_at=utc_now())
        )
        await self.repository.session.commit()
