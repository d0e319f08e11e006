"""The `parley` command: serve, migrate, manage users, write the protocol docs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from app.config.serving import parse_workers
from app.config.settings import Settings, SettingsError, get_settings
from app.core.logging import configure_logging
from app.main import create_app, modules_for
from app.modules.docs.cli import docs_commands

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
@click.option("--workers", type=int, default=None, help="Worker processes (default: WORKERS, 1).")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations first.")
def serve(host: str | None, port: int | None, workers: int | None, migrate: bool) -> None:
    """Serve HTTP and Socket.IO."""
    settings = _settings()
    workers = _workers(workers, settings)
    if workers > 1 and settings.is_sqlite:
        logger.warning("several workers on SQLite serialize their writes; use PostgreSQL to scale out")
    _check_modules(settings)
    if migrate:
        _migrate(settings, "heads")
    else:
        _check_database(settings)
    # Every process reads the settings again: --host/--port must reach the docs' URL and the workers.
    os.environ.update(HOST=host or settings.host, PORT=str(port or settings.port))
    get_settings.cache_clear()
    settings = _settings()
    if workers == 1:
        from app.serve.node import serve_one

        serve_one(settings, settings.host, settings.port)
    else:
        from app.serve.supervisor import supervise

        status = supervise(settings, settings.host, settings.port, workers)
        if status:
            raise SystemExit(status)
    logger.info("parley stopped")


def _workers(option: int | None, settings: Settings) -> int:
    """`--workers`, else WORKERS; refused with the option's name when out of range or without Redis."""
    if option is None:
        return settings.serve.workers
    try:
        workers = parse_workers(str(option))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--workers") from None
    if workers > 1 and not settings.redis_url:
        raise click.ClickException(
            "--workers above 1 needs REDIS_URL, so the workers share state and fan-out"
        )
    return workers


def _check_modules(settings: Settings) -> None:
    """Modules that cannot be found or composed stop the command with one line, before any work."""
    from app.core.app_factory import CORE_REQUIRES
    from app.core.module_order import order_modules

    with _module_failures_in_one_line():
        order_modules(modules_for(settings), CORE_REQUIRES)


@contextlib.contextmanager
def _module_failures_in_one_line() -> Iterator[None]:
    """A module that cannot be loaded, or revisions the database holds that no named module brings."""
    from alembic.util import CommandError

    from app.core.module import ModuleError

    try:
        yield
    except ModuleError as exc:
        raise click.ClickException(str(exc)) from None
    except CommandError as exc:
        raise click.ClickException(
            f"migrations: {exc}; a module whose revisions the database holds must stay in PARLEY_MODULES "
            "until `parley db downgrade NAME@base` takes them away"
        ) from None


def _migrate(settings: Settings, revision: str) -> None:
    from app.db.migrate import upgrade

    with _module_failures_in_one_line(), _database_failures_in_one_line(settings):
        upgrade(settings, revision)


def _check_database(settings: Settings) -> None:
    from app.core.db import Database

    async def ping() -> None:
        database = Database(settings)
        try:
            await database.ping()
        finally:
            await database.dispose()

    with _database_failures_in_one_line(settings):
        asyncio.run(ping())


@contextlib.contextmanager
def _database_failures_in_one_line(settings: Settings) -> Iterator[None]:
    """A database that is missing, unreachable or refuses us stops the command with one line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except (DBAPIError, OSError) as exc:
        logger.debug("database failure", exc_info=exc)
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        raise click.ClickException(f"cannot use the database {where} (DATABASE_URL): {reason}") from None


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: heads, Parley's and every module's)."""
    _migrate(_settings(), revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`game@base`: every revision of the module game)."""
    from app.db.migrate import downgrade

    settings = _settings()
    with _module_failures_in_one_line(), _database_failures_in_one_line(settings):
        downgrade(settings, revision)
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


main.add_command(docs_commands(create_app))
