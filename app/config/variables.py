"""Every variable Parley reads, declared once: its default, its parser and a one-line comment.

`.env.example` is generated from this table (see ``tests/unit/config/test_settings.py``), so the two
never drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.config.parsers import (
    choice,
    parse_bool,
    parse_csv,
    parse_email,
    parse_log_level,
    parse_non_negative_float,
    parse_optional,
    parse_optional_http_url,
    parse_port,
    parse_positive_float,
    parse_positive_int,
    parse_rate,
    parse_str,
)
from app.config.serving import SERVE_VARIABLES

DEFAULT_JWT_SECRET = "change-me-local-only-secret-0123456789abcdef"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./parley.db"


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str | None
    parse: Callable[[str], Any]
    comment: str


VARIABLES: tuple[Variable, ...] = (
    Variable("APP_ENV", "local", choice("local", "dev", "prod"), "local | dev | prod"),
    Variable("HOST", "127.0.0.1", parse_str, "interface `parley serve` binds to"),
    Variable("PORT", "8000", parse_port, "port `parley serve` listens on"),
    Variable(
        "PUBLIC_URL",
        "",
        parse_optional,
        "URL clients use to reach this server (docs); default http://HOST:PORT",
    ),
    Variable(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        parse_str,
        "SQLite (embedded default) or postgresql+asyncpg://…",
    ),
    Variable("DATABASE_ECHO", "false", parse_bool, "log every SQL statement"),
    Variable(
        "DATABASE_MAX_CONNECTIONS",
        "30",
        parse_positive_int,
        "PostgreSQL connections one process (each worker) may hold at most",
    ),
    Variable(
        "REDIS_URL",
        "",
        parse_optional,
        "empty: state and fan-out in process; redis://… to scale out, redis+cluster://… on a Redis Cluster",
    ),
    Variable(
        "REDIS_PREFIX", "parley:", parse_str, "prefix of every Redis key and channel of this deployment"
    ),
    Variable("JWT_ALGORITHM", "HS256", choice("HS256", "RS256", "ES256"), "the only algorithm accepted"),
    Variable("JWT_SECRET", DEFAULT_JWT_SECRET, parse_str, "HS256 secret; must be changed for prod"),
    Variable(
        "JWT_PRIVATE_KEY_FILE", "", parse_optional, "PEM private key (RS256/ES256); omit to only verify"
    ),
    Variable("JWT_PUBLIC_KEY_FILE", "", parse_optional, "PEM public key (RS256/ES256)"),
    Variable("JWT_ISSUER", "", parse_optional, "`iss` to issue and require; empty: not checked"),
    Variable("JWT_AUDIENCE", "", parse_optional, "`aud` to issue and require; empty: not checked"),
    Variable("ACCESS_TOKEN_TTL", "900", parse_positive_int, "access token lifetime, seconds"),
    Variable(
        "REFRESH_TOKEN_TTL", "2592000", parse_positive_int, "refresh token and session lifetime, seconds"
    ),
    Variable(
        "REFRESH_REUSE_GRACE",
        "2",
        parse_non_negative_float,
        "seconds a just-replaced refresh token is refused without revoking its session (racing refreshes)",
    ),
    Variable(
        "LOGIN_POLICY",
        "single_per_device",
        choice("single", "single_per_device", "multi"),
        "which older sessions a login revokes",
    ),
    Variable("SOCKET_DEFAULT_ROOMS", "user:{userId},broadcast:all", parse_csv, "rooms every socket joins"),
    Variable(
        "SOCKET_CORS_ORIGINS",
        "",
        parse_csv,
        "allowed browser origins, comma-separated; empty: same origin only",
    ),
    Variable("SOCKET_MAX_PAYLOAD_BYTES", "65536", parse_positive_int, "largest inbound packet, bytes"),
    Variable("SOCKET_PING_INTERVAL", "25", parse_positive_float, "Engine.IO ping interval, seconds"),
    Variable("SOCKET_PING_TIMEOUT", "20", parse_positive_float, "Engine.IO ping timeout, seconds"),
    Variable(
        "SOCKET_CONNECT_TIMEOUT",
        "10",
        parse_positive_float,
        "seconds a transport may take to join `/`, to upgrade, or to send a request body",
    ),
    Variable(
        "SOCKET_MAX_BACKLOG_BYTES",
        "4194304",
        parse_positive_int,
        "bytes that may wait to be sent to one socket, acks included; past it the socket is cut off",
    ),
    Variable(
        "SOCKET_MAX_BACKLOG_PACKETS",
        "1024",
        parse_positive_int,
        "packets that may wait to be sent to one socket",
    ),
    Variable(
        "SOCKET_WS_COMPRESSION",
        "false",
        parse_bool,
        "accept permessage-deflate from websocket clients (costs memory per connection and a compression "
        "per recipient of a broadcast)",
    ),
    Variable("SOCKET_MAX_PER_USER", "20", parse_positive_int, "sockets one user may hold at once"),
    Variable("SOCKET_MAX_ROOMS", "500", parse_positive_int, "rooms one socket may be in"),
    Variable(
        "SOCKET_MAX_CONCURRENT_HANDLERS", "8", parse_positive_int, "handlers running at once per socket"
    ),
    Variable("PRESENCE_TTL", "30", parse_positive_float, "seconds before a silent node's users go offline"),
    Variable("TYPING_TTL", "6", parse_positive_float, "seconds a typing indicator lives without refresh"),
    Variable("RATE_LIMIT_ENABLED", "true", parse_bool, "turn socket, login and REST rate limits on or off"),
    Variable("RATE_LIMIT_DEFAULT", "30/1", parse_rate, "socket events per socket: CAPACITY/SECONDS"),
    Variable("RATE_LIMIT_CHAT", "20/1", parse_rate, "chat:send per socket"),
    Variable("RATE_LIMIT_TYPING", "5/1", parse_rate, "chat:typing per socket"),
    Variable("RATE_LIMIT_AUTH", "20/60", parse_rate, "login/register attempts per client address"),
    Variable(
        "RATE_LIMIT_REST", "30/10", parse_rate, "REST writes per user (per client address without a token)"
    ),
    Variable(
        "SESSION_READY_CONVERSATIONS",
        "100",
        parse_positive_int,
        "conversations a socket joins on connect and session:ready lists: the most recently active",
    ),
    Variable(
        "WS_DOCS_ENABLED",
        "",
        parse_optional,
        "serve /ws-docs; empty: true for local and dev, false for prod",
    ),
    Variable("DOCS_CONTACT_NAME", "Parley", parse_str, "contact named in the API documents (info.contact)"),
    Variable("DOCS_CONTACT_URL", "", parse_optional_http_url, "contact URL; empty: PUBLIC_URL's /ws-docs"),
    Variable(
        "DOCS_CONTACT_EMAIL",
        "parley@example.com",
        parse_email,
        "contact e-mail in the API documents; set the address of whoever runs this server",
    ),
    Variable("DOCS_LICENSE_NAME", "Proprietary", parse_str, "license of the API named in its documents"),
    Variable("DOCS_LICENSE_URL", "", parse_optional_http_url, "URL of that license; empty: none"),
    Variable(
        "PARLEY_MODULES",
        "",
        parse_csv,
        "the application's own modules: entry-point names (group parley.modules) or pkg.mod[:attr]",
    ),
    Variable(
        "BENCH_EVENTS_ENABLED",
        "false",
        parse_bool,
        "bench-only echo/broadcast events; keep off in production",
    ),
    *(Variable(*spec) for spec in SERVE_VARIABLES),
    Variable("LOG_LEVEL", "INFO", parse_log_level, "DEBUG | INFO | WARNING | ERROR"),
    Variable("LOG_FORMAT", "text", choice("text", "json"), "text | json (one object per line)"),
)
