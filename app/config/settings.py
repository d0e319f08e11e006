"""Typed settings, read once from the environment and `.env`.

Every variable is declared once, in :data:`VARIABLES`, with its default, its parser and a one-line
comment; `.env.example` is generated from the same table (see ``tests/unit/test_settings.py``), so
the two never drift.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dotenv import dotenv_values

from app.config.serving import SERVE_VARIABLES, ServeSettings

AppEnv = Literal["local", "dev", "prod"]
JwtAlgorithm = Literal["HS256", "RS256", "ES256"]
LoginPolicy = Literal["single", "single_per_device", "multi"]
LogFormat = Literal["text", "json"]

DEFAULT_JWT_SECRET = "change-me-local-only-secret-0123456789abcdef"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./parley.db"


class SettingsError(ValueError):
    """A variable is missing or holds a value Parley cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``capacity`` events, refilled evenly over ``per_seconds``."""

    capacity: int
    per_seconds: float

    @property
    def refill_per_second(self) -> float:
        return self.capacity / self.per_seconds

    def __str__(self) -> str:
        return f"{self.capacity}/{self.per_seconds:g}"


def _parse_str(raw: str) -> str:
    return raw.strip()


def _parse_optional(raw: str) -> str | None:
    return raw.strip() or None


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _parse_port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _parse_non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or more")
    return value


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _parse_csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_rate(raw: str) -> RateLimit:
    capacity, _, seconds = raw.partition("/")
    limit = RateLimit(capacity=int(capacity), per_seconds=float(seconds or "1"))
    if limit.capacity <= 0 or limit.per_seconds <= 0:
        raise ValueError("expected CAPACITY/SECONDS with both positive")
    return limit


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


def _parse_log_level(raw: str) -> str:
    return _choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")(raw.strip().upper())


def _parse_optional_http_url(raw: str) -> str | None:
    value = raw.strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value or None


def _parse_email(raw: str) -> str:
    value = raw.strip()
    local, at, domain = value.partition("@")
    if not (local and at and "." in domain.strip(".")) or any(c.isspace() for c in value):
        raise ValueError("expected an e-mail address such as ops@example.org")
    return value


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str | None
    parse: Callable[[str], Any]
    comment: str


VARIABLES: tuple[Variable, ...] = (
    Variable("APP_ENV", "local", _choice("local", "dev", "prod"), "local | dev | prod"),
    Variable("HOST", "127.0.0.1", _parse_str, "interface `parley serve` binds to"),
    Variable("PORT", "8000", _parse_port, "port `parley serve` listens on"),
    Variable(
        "PUBLIC_URL",
        "",
        _parse_optional,
        "URL clients use to reach this server (docs); default http://HOST:PORT",
    ),
    Variable(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        _parse_str,
        "SQLite (embedded default) or postgresql+asyncpg://…",
    ),
    Variable("DATABASE_ECHO", "false", _parse_bool, "log every SQL statement"),
    Variable(
        "DATABASE_MAX_CONNECTIONS",
        "30",
        _parse_positive_int,
        "PostgreSQL connections one process (each worker) may hold at most",
    ),
    Variable(
        "REDIS_URL",
        "",
        _parse_optional,
        "empty: state and fan-out in process; redis://… to scale out, redis+cluster://… on a Redis Cluster",
    ),
    Variable(
        "REDIS_PREFIX", "parley:", _parse_str, "prefix of every Redis key and channel of this deployment"
    ),
    Variable("JWT_ALGORITHM", "HS256", _choice("HS256", "RS256", "ES256"), "the only algorithm accepted"),
    Variable("JWT_SECRET", DEFAULT_JWT_SECRET, _parse_str, "HS256 secret; must be changed for prod"),
    Variable(
        "JWT_PRIVATE_KEY_FILE", "", _parse_optional, "PEM private key (RS256/ES256); omit to only verify"
    ),
    Variable("JWT_PUBLIC_KEY_FILE", "", _parse_optional, "PEM public key (RS256/ES256)"),
    Variable("JWT_ISSUER", "", _parse_optional, "`iss` to issue and require; empty: not checked"),
    Variable("JWT_AUDIENCE", "", _parse_optional, "`aud` to issue and require; empty: not checked"),
    Variable("ACCESS_TOKEN_TTL", "900", _parse_positive_int, "access token lifetime, seconds"),
    Variable(
        "REFRESH_TOKEN_TTL", "2592000", _parse_positive_int, "refresh token and session lifetime, seconds"
    ),
    Variable(
        "REFRESH_REUSE_GRACE",
        "2",
        _parse_non_negative_float,
        "seconds a just-replaced refresh token is refused without revoking its session (racing refreshes)",
    ),
    Variable(
        "LOGIN_POLICY",
        "single_per_device",
        _choice("single", "single_per_device", "multi"),
        "which older sessions a login revokes",
    ),
    Variable("SOCKET_DEFAULT_ROOMS", "user:{userId},broadcast:all", _parse_csv, "rooms every socket joins"),
    Variable(
        "SOCKET_CORS_ORIGINS",
        "",
        _parse_csv,
        "allowed browser origins, comma-separated; empty: same origin only",
    ),
    Variable("SOCKET_MAX_PAYLOAD_BYTES", "65536", _parse_positive_int, "largest inbound packet, bytes"),
    Variable("SOCKET_PING_INTERVAL", "25", _parse_positive_float, "Engine.IO ping interval, seconds"),
    Variable("SOCKET_PING_TIMEOUT", "20", _parse_positive_float, "Engine.IO ping timeout, seconds"),
    Variable(
        "SOCKET_CONNECT_TIMEOUT",
        "10",
        _parse_positive_float,
        "seconds a transport may take to join `/`, to upgrade, or to send a request body",
    ),
    Variable(
        "SOCKET_MAX_BACKLOG_BYTES",
        "4194304",
        _parse_positive_int,
        "bytes that may wait to be sent to one socket, acks included; past it the socket is cut off",
    ),
    Variable(
        "SOCKET_MAX_BACKLOG_PACKETS",
        "1024",
        _parse_positive_int,
        "packets that may wait to be sent to one socket",
    ),
    Variable("SOCKET_MAX_PER_USER", "20", _parse_positive_int, "sockets one user may hold at once"),
    Variable("SOCKET_MAX_ROOMS", "500", _parse_positive_int, "rooms one socket may be in"),
    Variable(
        "SOCKET_MAX_CONCURRENT_HANDLERS", "8", _parse_positive_int, "handlers running at once per socket"
    ),
    Variable("PRESENCE_TTL", "30", _parse_positive_float, "seconds before a silent node's users go offline"),
    Variable("TYPING_TTL", "6", _parse_positive_float, "seconds a typing indicator lives without refresh"),
    Variable("RATE_LIMIT_ENABLED", "true", _parse_bool, "turn socket, login and REST rate limits on or off"),
    Variable("RATE_LIMIT_DEFAULT", "30/1", _parse_rate, "socket events per socket: CAPACITY/SECONDS"),
    Variable("RATE_LIMIT_CHAT", "20/1", _parse_rate, "chat:send per socket"),
    Variable("RATE_LIMIT_TYPING", "5/1", _parse_rate, "chat:typing per socket"),
    Variable("RATE_LIMIT_AUTH", "20/60", _parse_rate, "login/register attempts per client address"),
    Variable(
        "RATE_LIMIT_REST", "30/10", _parse_rate, "REST writes per user (per client address without a token)"
    ),
    Variable(
        "SESSION_READY_CONVERSATIONS",
        "100",
        _parse_positive_int,
        "conversations a socket joins on connect and session:ready lists: the most recently active",
    ),
    Variable(
        "WS_DOCS_ENABLED",
        "",
        _parse_optional,
        "serve /ws-docs; empty: true for local and dev, false for prod",
    ),
    Variable("DOCS_CONTACT_NAME", "Parley", _parse_str, "contact named in the API documents (info.contact)"),
    Variable("DOCS_CONTACT_URL", "", _parse_optional_http_url, "contact URL; empty: PUBLIC_URL's /ws-docs"),
    Variable(
        "DOCS_CONTACT_EMAIL",
        "parley@example.com",
        _parse_email,
        "contact e-mail in the API documents; set the address of whoever runs this server",
    ),
    Variable("DOCS_LICENSE_NAME", "Proprietary", _parse_str, "license of the API named in its documents"),
    Variable("DOCS_LICENSE_URL", "", _parse_optional_http_url, "URL of that license; empty: none"),
    Variable(
        "BENCH_EVENTS_ENABLED",
        "false",
        _parse_bool,
        "bench-only echo/broadcast events; keep off in production",
    ),
    *(Variable(*spec) for spec in SERVE_VARIABLES),
    Variable("LOG_LEVEL", "INFO", _parse_log_level, "DEBUG | INFO | WARNING | ERROR"),
    Variable("LOG_FORMAT", "text", _choice("text", "json"), "text | json (one object per line)"),
)


@dataclass(frozen=True, slots=True)
class JwtSettings:
    algorithm: JwtAlgorithm
    secret: str
    private_key_file: str | None
    public_key_file: str | None
    issuer: str | None
    audience: str | None
    access_ttl: int
    refresh_ttl: int
    refresh_reuse_grace: float


@dataclass(frozen=True, slots=True)
class SocketSettings:
    default_rooms: tuple[str, ...]
    cors_origins: tuple[str, ...]
    max_payload_bytes: int
    ping_interval: float
    ping_timeout: float
    connect_timeout: float
    max_backlog_bytes: int
    max_backlog_packets: int
    max_per_user: int
    max_rooms: int
    max_concurrent_handlers: int
    ready_conversations: int


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    enabled: bool
    default: RateLimit
    chat: RateLimit
    typing: RateLimit
    auth: RateLimit
    rest: RateLimit

    def for_class(self, name: str) -> RateLimit:
        """The bucket of an event class; unknown classes share the default bucket size."""
        return {"chat": self.chat, "typing": self.typing}.get(name, self.default)


@dataclass(frozen=True, slots=True)
class DocsInfo:
    """Who answers for the API and under which license, as the AsyncAPI and OpenAPI documents say."""

    contact_name: str
    contact_url: str
    contact_email: str
    license_name: str
    license_url: str | None


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
            v["APP_ENV"] != "prod" if docs_flag is None else _parse_bool_named("WS_DOCS_ENABLED", docs_flag)
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
            _check_key_file("JWT_PUBLIC_KEY_FILE", jwt.public_key_file, jwt.algorithm, private=False)
            if jwt.private_key_file:
                _check_key_file("JWT_PRIVATE_KEY_FILE", jwt.private_key_file, jwt.algorithm, private=True)


KEY_TYPES: dict[str, tuple[type[Any], type[Any]]] = {
    "RS256": (rsa.RSAPublicKey, rsa.RSAPrivateKey),
    "ES256": (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey),
}


def _check_key_file(name: str, path: str, algorithm: str, *, private: bool) -> None:
    """The file exists and holds a PEM key of the algorithm's kind, so a bad key stops start-up."""
    try:
        pem = Path(path).read_bytes()
    except OSError:
        raise SettingsError(f"{name}={path!r} is not a readable file") from None
    try:
        key: Any = (
            serialization.load_pem_private_key(pem, password=None)
            if private
            else serialization.load_pem_public_key(pem)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        kind = "private" if private else "public"
        raise SettingsError(f"{name}={path!r} is not a PEM {kind} key") from None
    if not isinstance(key, KEY_TYPES[algorithm][1 if private else 0]):
        raise SettingsError(f"{name}={path!r} does not hold a key for JWT_ALGORITHM={algorithm}")


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


def _parse_bool_named(name: str, raw: str) -> bool:
    try:
        return _parse_bool(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None


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
