"""Parsers of single variables: each returns the value or raises `ValueError` with the reason,
which `Settings.from_env` turns into a `SettingsError` naming the variable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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


def parse_str(raw: str) -> str:
    return raw.strip()


def parse_optional(raw: str) -> str | None:
    return raw.strip() or None


def parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def parse_port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def parse_positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def parse_non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or more")
    return value


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def parse_csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_rate(raw: str) -> RateLimit:
    capacity, _, seconds = raw.partition("/")
    limit = RateLimit(capacity=int(capacity), per_seconds=float(seconds or "1"))
    if limit.capacity <= 0 or limit.per_seconds <= 0:
        raise ValueError("expected CAPACITY/SECONDS with both positive")
    return limit


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


def parse_log_level(raw: str) -> str:
    return choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")(raw.strip().upper())


def parse_optional_http_url(raw: str) -> str | None:
    value = raw.strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value or None


def parse_email(raw: str) -> str:
    value = raw.strip()
    local, at, domain = value.partition("@")
    if not (local and at and "." in domain.strip(".")) or any(c.isspace() for c in value):
        raise ValueError("expected an e-mail address such as ops@example.org")
    return value


def parse_bool_named(name: str, raw: str) -> bool:
    try:
        return parse_bool(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None
