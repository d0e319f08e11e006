"""Settings of how Parley is served: worker processes, node name, trusted proxies, shutdown, metrics.

The parsers raise `ValueError` with the reason; `Settings.from_env` turns it into a `SettingsError`
that names the variable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ServeSettings:
        return cls(
            workers=values["WORKERS"],
            node_name=values["NODE_NAME"],
            trusted_proxies=values["TRUSTED_PROXIES"],
            shutdown_grace=values["SHUTDOWN_GRACE"],
            metrics_token=values["METRICS_TOKEN"],
        )


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


def parse_grace(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


SERVE_VARIABLES: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("WORKERS", "1", parse_workers, "worker processes of `parley serve`; above 1 needs REDIS_URL"),
    ("NODE_NAME", "", parse_node_name, "this node's name in session ids, for sticky load balancing"),
    (
        "TRUSTED_PROXIES",
        "",
        parse_trusted_proxies,
        "proxy addresses/networks whose X-Forwarded-For is believed; empty: none",
    ),
    (
        "SHUTDOWN_GRACE",
        "10",
        parse_grace,
        "seconds a stopping server gives running handlers before closing transports",
    ),
    ("METRICS_TOKEN", "", parse_metrics_token, "bearer token /metrics requires; empty: open"),
)
"""(name, default, parser, comment) of each variable above, in `.env.example` order."""
