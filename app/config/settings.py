"""Typed settings, read once from the environment and `.env`.

Every variable is declared once, in :data:`app.config.variables.VARIABLES`, with its default, its
parser (`parsers.py`) and a one-line comment; `.env.example` is generated from the same table (see
``tests/unit/config/test_settings.py``), so the two never drift. The groups of settings are in
`sections.py`; this module composes them and is where the rest of Parley imports them from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from app.config.keys import check_key_file
from app.config.parsers import RateLimit, SettingsError, parse_bool_named
from app.config.sections import (
    AppEnv,
    DocsInfo,
    JwtAlgorithm,
    JwtSettings,
    LogFormat,
    LoginPolicy,
    RateLimitSettings,
    SocketSettings,
)
from app.config.serving import ServeSettings
from app.config.variables import DEFAULT_JWT_SECRET, VARIABLES

__all__ = [
    "DEFAULT_JWT_SECRET",
    "VARIABLES",
    "AppEnv",
    "DocsInfo",
    "JwtAlgorithm",
    "JwtSettings",
    "LogFormat",
    "LoginPolicy",
    "RateLimit",
    "RateLimitSettings",
    "Settings",
    "SettingsError",
    "SocketSettings",
    "env_example",
    "get_settings",
]


@dataclass(frozen=True, slots=True)
class Settings:
    app_env: AppEnv
    host: str
    port: int
    public_url: str
    database_url: str
    database_echo: bool
    database_max_connections: int
    redis_url: str | None
    redis_prefix: str
    jwt: JwtSettings
    login_policy: LoginPolicy
    socket: SocketSettings
    presence_ttl: float
    typing_ttl: float
    rate_limits: RateLimitSettings
    ws_docs_enabled: bool
    docs_info: DocsInfo
    modules: tuple[str, ...]
    bench_events_enabled: bool
    serve: ServeSettings
    log_level: str
    log_format: LogFormat

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Read, parse and check every variable; raise :class:`SettingsError` naming the first bad one."""
        source = _read_env_file(Path(env_file)) if env_file is not None else {}
        source.update(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            raw = source.get(variable.name, variable.default or "")
            try:
                values[variable.name] = variable.parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{variable.name}={raw!r} is invalid: {exc}") from None
        settings = cls._build(values)
        settings.check()
        return settings

    @classmethod
    def _build(cls, v: Mapping[str, Any]) -> Settings:
        docs_flag = v["WS_DOCS_ENABLED"]
        docs_enabled = (
            v["APP_ENV"] != "prod" if docs_flag is None else parse_bool_named("WS_DOCS_ENABLED", docs_flag)
        )
        public_url = v["PUBLIC_URL"] or f"http://{v['HOST']}:{v['PORT']}"
        return cls(
            app_env=v["APP_ENV"],
            host=v["HOST"],
            port=v["PORT"],
            public_url=public_url,
            database_url=v["DATABASE_URL"],
            database_echo=v["DATABASE_ECHO"],
            database_max_connections=v["DATABASE_MAX_CONNECTIONS"],
            redis_url=v["REDIS_URL"],
            redis_prefix=v["REDIS_PREFIX"],
            jwt=JwtSettings(
                algorithm=v["JWT_ALGORITHM"],
                secret=v["JWT_SECRET"],
                private_key_file=v["JWT_PRIVATE_KEY_FILE"],
                public_key_file=v["JWT_PUBLIC_KEY_FILE"],
                issuer=v["JWT_ISSUER"],
                audience=v["JWT_AUDIENCE"],
                access_ttl=v["ACCESS_TOKEN_TTL"],
                refresh_ttl=v["REFRESH_TOKEN_TTL"],
                refresh_reuse_grace=v["REFRESH_REUSE_GRACE"],
            ),
            login_policy=v["LOGIN_POLICY"],
            socket=SocketSettings(
                default_rooms=v["SOCKET_DEFAULT_ROOMS"],
                cors_origins=v["SOCKET_CORS_ORIGINS"],
                max_payload_bytes=v["SOCKET_MAX_PAYLOAD_BYTES"],
                ping_interval=v["SOCKET_PING_INTERVAL"],
                ping_timeout=v["SOCKET_PING_TIMEOUT"],
                connect_timeout=v["SOCKET_CONNECT_TIMEOUT"],
                max_backlog_bytes=v["SOCKET_MAX_BACKLOG_BYTES"],
                max_backlog_packets=v["SOCKET_MAX_BACKLOG_PACKETS"],
                ws_compression=v["SOCKET_WS_COMPRESSION"],
                max_per_user=v["SOCKET_MAX_PER_USER"],
                max_rooms=v["SOCKET_MAX_ROOMS"],
                max_concurrent_handlers=v["SOCKET_MAX_CONCURRENT_HANDLERS"],
                ready_conversations=v["SESSION_READY_CONVERSATIONS"],
            ),
            presence_ttl=v["PRESENCE_TTL"],
            typing_ttl=v["TYPING_TTL"],
            rate_limits=RateLimitSettings(
                enabled=v["RATE_LIMIT_ENABLED"],
                default=v["RATE_LIMIT_DEFAULT"],
                chat=v["RATE_LIMIT_CHAT"],
                typing=v["RATE_LIMIT_TYPING"],
                auth=v["RATE_LIMIT_AUTH"],
                rest=v["RATE_LIMIT_REST"],
            ),
            ws_docs_enabled=docs_enabled,
            docs_info=DocsInfo(
                contact_name=v["DOCS_CONTACT_NAME"] or "Parley",
                contact_url=v["DOCS_CONTACT_URL"] or f"{public_url.rstrip('/')}/ws-docs",
                contact_email=v["DOCS_CONTACT_EMAIL"],
                license_name=v["DOCS_LICENSE_NAME"] or "Proprietary",
                license_url=v["DOCS_LICENSE_URL"],
            ),
            modules=v["PARLEY_MODULES"],
            bench_events_enabled=v["BENCH_EVENTS_ENABLED"],
            serve=ServeSettings.from_values(v),
            log_level=v["LOG_LEVEL"],
            log_format=v["LOG_FORMAT"],
        )

    def check(self) -> None:
        """Cross-variable rules that a single parser cannot see."""
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError("DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if self.redis_url and not self.redis_url.startswith(schemes):
            raise SettingsError(
                "REDIS_URL must start with redis://, rediss://, unix:// or (a Redis Cluster) redis+cluster://"
            )
        if self.serve.workers > 1 and not self.redis_url:
            raise SettingsError(f"WORKERS={self.serve.workers} needs REDIS_URL, so the workers share state")
        if self.socket.max_payload_bytes < 1024:
            raise SettingsError("SOCKET_MAX_PAYLOAD_BYTES must be at least 1024")
        jwt = self.jwt
        if jwt.algorithm == "HS256":
            if self.app_env == "prod" and (not jwt.secret or jwt.secret == DEFAULT_JWT_SECRET):
                raise SettingsError("JWT_SECRET must be set to a private value when APP_ENV=prod")
            if len(jwt.secret) < 32:
                raise SettingsError("JWT_SECRET must be at least 32 characters long")
        else:
            if not jwt.public_key_file:
                raise SettingsError(f"JWT_PUBLIC_KEY_FILE is required for JWT_ALGORITHM={jwt.algorithm}")
            check_key_file("JWT_PUBLIC_KEY_FILE", jwt.public_key_file, jwt.algorithm, private=False)
            if jwt.private_key_file:
                check_key_file("JWT_PRIVATE_KEY_FILE", jwt.private_key_file, jwt.algorithm, private=True)


def _read_env_file(path: Path) -> dict[str, str]:
    """The variables of a `.env` file; a name Parley does not know (a typo) stops start-up.

    Only the file is held to this: the process environment carries many variables of other programs.
    """
    if not path.is_file():
        return {}
    values = {key: value for key, value in dotenv_values(path).items() if value is not None}
    known = {variable.name for variable in VARIABLES}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(f"{unknown[0]} in {path} is not a Parley variable (see .env.example)")
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings.from_env()


def env_example() -> str:
    """The text of `.env.example`: every variable, its default and its comment."""
    lines = ["# Parley configuration. Every variable, its default, and what it does.", ""]
    for variable in VARIABLES:
        lines.append(f"# {variable.comment}")
        lines.append(f"{variable.name}={variable.default or ''}")
    return "\n".join(lines) + "\n"
