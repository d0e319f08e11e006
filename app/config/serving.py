"""Settings of how Parley is served: worker processes, node name, trusted proxies, shutdown, metrics.

The parsers raise `ValueError` with the reason; `Settings.from_env` turns it into a `SettingsError`
that names the variable.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_WORKERS = 64
METRICS_TOKEN_MIN = 16
NODE_NAME = re.compile(r"[a-z][a-z0-9]{0,15}")


@dataclass(frozen=True, slots=True)
class ServeSettings:
    workers: int
    node_name: str | None
    trusted_proxies: tuple[str, ...]
    shutdown_grace: float
    metrics_token: str | None


def parse_workers(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"must be between 1 and {MAX_WORKERS}")
    return value


def parse_node_name(raw: str) -> str | None:
    """A short name that Engine.IO session ids start with, so a load balancer can route by it."""
    value = raw.strip()
    if not value:
        return None
    if not NODE_NAME.fullmatch(value):
        raise ValueError("expected a lowercase letter, then up to 15 lowercase letters or digits")
    return value


def parse_trusted_proxies(raw: str) -> tuple[str, ...]:
    """IP addresses or networks (`10.0.0.0/8`); a network with host bits set is refused, not guessed."""
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in entries:
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)
            else:
                ipaddress.ip_address(entry)
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network ({exc})") from None
    return entries


def parse_metrics_token(raw: str) -> str | None:
    value = raw.strip()
    if value and len(value) < METRICS_TOKEN_MIN:
        raise ValueError(f"must be at least {METRICS_TOKEN_MIN} characters long")
    return value or None
