"""The `parley` command: serve, migrate, manage users, write the protocol docs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

import click

from app.config.settings import Settings, SettingsError, get_settings
from app.core.logging import configure_logging
from app.modules.docs.cli import docs

if TYPE_CHECKING:
    from app.modules.accounts.schemas import RegisterIn

logger = logging.getLogger("parley.cli")


def _settings() -> Settings:
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


@click.group()
def main() -> None:
    """Parley: a real-time messaging server."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default: HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: PORT).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations first.")
def serve(host: str | None, port: int | None, workers: int, migrate: bool) -> None:
    """Serve HTTP and Socket.IO."""
    import uvicorn

    from app.core.http.server_protocol import HeadDeadlineProtocol

    settings = _settings()
    if workers > 1 and not settings.redis_url:
        raise click.ClickException(
            "--workers above 1 needs REDIS_URL, so the workers share state and fan-out"
        )
    if workers > 1 and settings.is_sqlite:
        logger.warning("several workers on SQLite serialize their writes; use PostgreSQL to scale out")
    if migrate:
        from app.db.migrate import upgrade

        upgrade(settings)
    host = host or settings.host
    port = port or settings.port
    # The app factory reads the settings again (in each worker): --host/--port must reach it.
    os.environ.update(HOST=host, PORT=str(port))
    get_settings.cache_clear()
    _stop_quietly_after_shutdown()
    uvicorn.run(
        "app.asgi:create_asgi",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=HeadDeadlineProtocol,
        ws="websockets-sansio",
        ws_max_size=settings.socket.max_payload_bytes * 2 + 1024,
        # Engine.IO's ping/pong already finds dead clients; a second heartbeat in the websocket
        # layer would cost every idle connection a timer and a frame each way every 20 s.
        ws_ping_interval=None,
        ws_ping_timeout=None,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )
    logger.info("parley stopped")


def _stop_quietly_after_shutdown() -> None:
    """Let `serve` end with exit status 0 after a graceful stop on SIGTERM or Ctrl-C.

    uvicorn shuts down on the signal, then raises it again against the handler that was in place
    before; with the default handlers that kills the process (status -15) or raises KeyboardInterrupt.
    """
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _already_stopped)


def _already_stopped(_signum: int, _frame: FrameType | None) -> None:
    """The server has already stopped gracefully when this runs; nothing is left to do."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from app.db.migrate import upgrade

    upgrade(_settings(), revision)
    click.echo(f"database at {revision}")


@main.group()
def users() -> None:
    """Built-in accounts."""


@users.command("create")
@click.argument("username")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--display-name", default=None)
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
def users_create(username: str, password: str, display_name: str | None, admin: bool) -> None:
    """Create USERNAME (fails if it exists)."""
    import msgspec

    from app.core.errors import AppError
    from app.modules.accounts.schemas import RegisterIn

    try:
        body = msgspec.convert(
            {"username": username, "password": password, "display_name": display_name}, RegisterIn
        )
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from None
    from sqlalchemy.exc import OperationalError, ProgrammingError

    settings = _settings()
    try:
        user_id = asyncio.run(_create_user(settings, body, admin))
    except AppError as exc:
        raise click.ClickException(f"{exc.message} ({username})") from None
    except (OperationalError, ProgrammingError) as exc:
        logger.debug("user creation failed", exc_info=exc)
        raise click.ClickException(
            "the database is unreachable or not migrated; run `parley db upgrade`"
        ) from None
    click.echo(f"created {'admin ' if admin else ''}user {username} ({user_id})")


async def _create_user(settings: Settings, body: RegisterIn, admin: bool) -> str:
    from app.core.db import Database, UnitOfWork
    from app.modules.accounts.service import UserService

    db = Database(settings)
    try:
        async with UnitOfWork(db) as uow:
            user = await uow.service(UserService).register(
                body.username, body.password, body.display_name, is_admin=admin
            )
            return str(user.id)
    finally:
        await db.dispose()


main.add_command(docs)
