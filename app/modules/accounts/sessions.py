"""Login sessions in the state backend (Redis or in process), with a TTL.

A refresh token is `{session_id}.{secret}`; the session keeps only the secret's hash and rotates it
on every use, so a refresh token works once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid

import msgspec

from app.config.settings import LoginPolicy
from app.core.state import StateBackend


class SessionRecord(msgspec.Struct):
    id: str
    user_id: str
    device: str
    created_at: dt.datetime
    refresh_hash: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionStore:
    def __init__(self, state: StateBackend, ttl: int) -> None:
        self.state = state
        self.ttl = ttl

    @staticmethod
    def _key(session_id: str) -> str:
        return f"session:{session_id}"

    @staticmethod
    def _user_key(user_id: str) -> str:
        return f"user_sessions:{user_id}"

    async def create(self, user_id: str, device: str) -> tuple[SessionRecord, str]:
        secret = secrets.token_urlsafe(32)
        record = SessionRecord(
            id=str(uuid.uuid4()),
            user_id=user_id,
            device=device,
            created_at=dt.datetime.now(dt.UTC),
            refresh_hash=_hash(secret),
        )
        await self.state.put(self._key(record.id), msgspec.json.encode(record), ttl=self.ttl)
        await self.state.set_add(self._user_key(user_id), record.id, ttl=self.ttl)
        return record, f"{record.id}.{secret}"

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = await self.state.get(self._key(session_id))
        return msgspec.json.decode(raw, type=SessionRecord) if raw is not None else None

    async def rotate(self, refresh_token: str) -> tuple[SessionRecord, str] | None:
        """Exchange a refresh token for a new one; None if unknown, revoked or already used."""
        session_id, _, secret = refresh_token.partition(".")
        record = await self.get(session_id) if secret else None
        if record is None or not hmac.compare_digest(record.refresh_hash, _hash(secret)):
            return None
        # Exactly one of two concurrent refreshes with the same token wins.
        if not await self.state.set_if_absent(f"refresh_used:{record.refresh_hash}", b"1", ttl=self.ttl):
            return None
        new_secret = secrets.token_urlsafe(32)
        record = msgspec.structs.replace(record, refresh_hash=_hash(new_secret))
        await self.state.put(self._key(record.id), msgspec.json.encode(record), ttl=self.ttl)
        await self.state.expire(self._user_key(record.user_id), self.ttl)
        return record, f"{record.id}.{new_secret}"

    async def for_user(self, user_id: str) -> list[SessionRecord]:
        ids: list[str] = sorted(await self.state.set_members(self._user_key(user_id)))
        raws = await self.state.get_many([self._key(i) for i in ids])
        stale = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if stale:
            await self.state.set_remove(self._user_key(user_id), *stale)
        return [msgspec.json.decode(raw, type=SessionRecord) for raw in raws if raw is not None]

    async def revoke(self, user_id: str, session_ids: list[str]) -> None:
        if session_ids:
            await self.state.delete(*(self._key(i) for i in session_ids))
            await self.state.set_remove(self._user_key(user_id), *session_ids)

    async def superseded_by_login(self, user_id: str, device: str, policy: LoginPolicy) -> list[str]:
        """The sessions a new login on `device` replaces under `policy`."""
        if policy == "multi":
            return []
        sessions = await self.for_user(user_id)
        if policy == "single":
            return [s.id for s in sessions]
        return [s.id for s in sessions if s.device == device]
