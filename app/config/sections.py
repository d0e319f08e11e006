"""The groups of settings each part of Parley reads: tokens, sockets, rate limits, the documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.config.parsers import RateLimit

AppEnv = Literal["local", "dev", "prod"]
JwtAlgorithm = Literal["HS256", "RS256", "ES256"]
LoginPolicy = Literal["single", "single_per_device", "multi"]
LogFormat = Literal["text", "json"]


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
    ws_compression: bool
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


@dataclass(frozen=True, slots=True)
class DocsInfo:
    """Who answers for the API and under which license, as the AsyncAPI and OpenAPI documents say."""

    contact_name: str
    contact_url: str
    contact_email: str
    license_name: str
    license_url: str | None
