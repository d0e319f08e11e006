"""`parley docs spec|types`: write the AsyncAPI document or the client types without a server.

The gateways are composed exactly as the server composes them, but on an in-memory SQLite database
and in-process state that are never opened, so neither PostgreSQL nor Redis is needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import click

from app.config.settings import Settings, SettingsError
from app.core.app_factory import ParleyApp
from app.core.module import ModuleError
from app.core.socket.registry import EventRegistry
from app.modules.docs.service import DocsService

OFFLINE_DATABASE = "sqlite+aiosqlite:///:memory:"


AppFactory = Callable[[Settings], ParleyApp]
"""Composes the app from settings, as the server does (`app.main.create_app`)."""


def offline_service(create_app: AppFactory) -> DocsService:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    offline = dataclasses.replace(settings, database_url=OFFLINE_DATABASE, redis_url=None)
    try:
        registry = create_app(offline).context.get(EventRegistry)
    except ModuleError as exc:
        raise click.ClickException(str(exc)) from None
    return DocsService(registry, settings)


def _write(content: bytes, output: Path | None) -> None:
    if output is None:
        click.echo(content.decode())
        return
    output.write_bytes(content)
    click.echo(f"wrote {output} ({len(content)} bytes)", err=True)


OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to FILE instead of standard output.",
)


def docs_commands(create_app: AppFactory) -> click.Group:
    """`parley docs`, writing what the app `create_app` composes."""

    @click.group()
    def docs() -> None:
        """The socket protocol's documentation."""

    @docs.command("spec")
    @OUTPUT
    def spec(output: Path | None) -> None:
        """The AsyncAPI 2.6.0 document (JSON)."""
        _write(offline_service(create_app).spec_json + b"\n", output)

    @docs.command("types")
    @OUTPUT
    def types(output: Path | None) -> None:
        """TypeScript declarations for Socket.IO clients."""
        _write(offline_service(create_app).client_types().encode(), output)

    return docs
