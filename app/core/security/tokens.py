"""JWT access tokens: issue with the configured key, verify with only the configured algorithm."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import jwt.types

from app.config.settings import JwtSettings
from app.core.errors import AppError, ErrorCode

LEEWAY = 5
"""Seconds of clock skew allowed on `exp`, `nbf` and `iat`."""
VERIFIED_KEPT = 4096
"""Verified tokens kept to skip their signature check when they come back."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified token says: who (`sub`), which session (`sid`, absent for external issuers)."""

    subject: str
    session_id: str | None
    expires_at: dt.datetime
    raw: dict[str, Any]


class TokenCodec:
    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._verified: OrderedDict[str, tuple[AccessClaims, float]] = OrderedDict()
        """Tokens verified lately, with their `exp`, the least recently used first."""
        if settings.algorithm == "HS256":
            self._signing_key: Any = settings.secret
            self._verifying_key: Any = settings.secret
        else:
            self._verifying_key = Path(settings.public_key_file or "").read_bytes()
            self._signing_key = (
                Path(settings.private_key_file).read_bytes() if settings.private_key_file else None
            )

    @property
    def can_issue(self) -> bool:
        return self._signing_key is not None

    def issue(self, subject: str, session_id: str, ttl: int | None = None) -> tuple[str, dt.datetime]:
        if not self.can_issue:
            raise AppError(ErrorCode.UNAVAILABLE, "This server only verifies tokens; it has no signing key")
        now = dt.datetime.now(dt.UTC)
        expires_at = now + dt.timedelta(seconds=ttl if ttl is not None else self.settings.access_ttl)
        claims: dict[str, Any] = {
            "sub": subject,
            "sid": session_id,
            "iat": now,
            "exp": expires_at,
            "jti": uuid.uuid4().hex,
        }
        if self.settings.issuer:
            claims["iss"] = self.settings.issuer
        if self.settings.audience:
            claims["aud"] = self.settings.audience
        token = jwt.encode(claims, self._signing_key, algorithm=self.settings.algorithm)
        return token, expires_at.replace(microsecond=0)

    def verify(self, token: str) -> AccessClaims:
        """Decode and check a token; raise `AppError` UNAUTHORIZED or TOKEN_EXPIRED.

        A token verified before is taken from `_verified` (its signature and claims cannot have
        changed), its expiry checked again: clients reconnect with the same token.
        """
        kept = self._verified.get(token)
        if kept is not None:
            claims, expiry = kept
            if expiry > time.time() - LEEWAY:
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        verified = self._decode(token)
        self._verified[token] = (verified, float(verified.raw["exp"]))
        if len(self._verified) > VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return verified

    def _decode(self, token: str) -> AccessClaims:
        required = ["exp", "sub"]
        options: jwt.types.Options = {"require": required, "verify_aud": bool(self.settings.audience)}
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.settings.algorithm],
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                options=options,
                leeway=LEEWAY,
            )
        except jwt.ExpiredSignatureError:
            raise AppError(ErrorCode.TOKEN_EXPIRED, "Token has expired") from None
        except jwt.PyJWTError:
            raise AppError(ErrorCode.UNAUTHORIZED, "Invalid token") from None
        subject, session_id = claims.get("sub"), claims.get("sid")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise AppError(ErrorCode.UNAUTHORIZED, "Invalid token subject")
        if session_id is not None and not isinstance(session_id, str):
            raise AppError(ErrorCode.UNAUTHORIZED, "Invalid token session")
        expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), tz=dt.UTC)
        return AccessClaims(subject=subject, session_id=session_id, expires_at=expires_at, raw=claims)
