"""The `parley` console command, run as a process with its own environment (forked from the fork
server where it runs as a fresh one would: `tests.support.forkserver`)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.config.settings import Settings
from app.core.db import Database, UnitOfWork
from app.db.migrate import upgrade
from app.modules.accounts.service import UserService
from tests.support.backends import PG_HOST, PG_PORT, PG_USER, require_services
from tests.support.forkserver import PARLEY, run_forked
from tests.support.server import ROOT, free_port

PASSWORD = "correct-horse-42"


def environment(**env: str) -> dict[str, str]:
    """Only the variables given (plus PATH), so no .env of the repo or the shell's settings leak in."""
    return {"PATH": os.environ.get("PATH", ""), "LOG_LEVEL": "WARNING", **env}


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`parley ARGS` in `cwd`."""
    return run_forked([PARLEY, *args], environment(**env), cwd, timeout=60)


def run_together(
    cwd: Path, commands: dict[str, tuple[tuple[str, ...], dict[str, str]]]
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run independent `parley` commands at once."""
    with ThreadPoolExecutor(len(commands)) as pool:
        running = {label: pool.submit(run, cwd, *args, **env) for label, (args, env) in commands.items()}
        return {label: outcome.result() for label, outcome in running.items()}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def env(database: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}


def users_in(database: Path) -> dict[str, bool]:
    with sqlite3.connect(database) as connection:
        return {
            name: bool(admin) for name, admin in connection.execute("SELECT username, is_admin FROM users")
        }


def test_db_upgrade_creates_the_schema_in_the_database_named_by_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite+aiosqlite:///./from-dotenv.db\n")
    result = run(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database at head" in result.stdout
    with sqlite3.connect(tmp_path / "from-dotenv.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "alembic_version"} <= tables


def test_users_create(tmp_path: Path, database: Path, env: dict[str, str]) -> None:
    settings = Settings.from_env(env, env_file=None)
    upgrade(settings)
    asyncio.run(create_user(settings, "alice"))
    outcomes = run_together(
        tmp_path,
        {
            "plain": (("users", "create", "bob", "--password", PASSWORD), env),
            "admin": (("users", "create", "root_admin", "--password", PASSWORD, "--admin"), env),
            "existing": (("users", "create", "ALICE", "--password", PASSWORD), env),
        },
    )
    assert outcomes["plain"].returncode == 0, outcomes["plain"].stderr
    assert "created user bob" in outcomes["plain"].stdout
    assert outcomes["admin"].returncode == 0, outcomes["admin"].stderr
    assert "created admin user root_admin" in outcomes["admin"].stdout
    existing = outcomes["existing"]
    assert existing.returncode != 0
    assert "taken" in existing.stderr
    assert "ALICE" in existing.stderr
    assert "Traceback" not in existing.stderr
    assert users_in(database) == {"alice": False, "bob": False, "root_admin": True}


async def create_user(settings: Settings, username: str) -> None:
    db = Database(settings)
    try:
        async with UnitOfWork(db) as uow:
            await uow.service(UserService).register(username, PASSWORD, None)
    finally:
        await db.dispose()


def test_refusals_exit_non_zero_with_a_reason_and_no_trace(tmp_path: Path, env: dict[str, str]) -> None:
    create = ("users", "create", "dave", "--password", PASSWORD)
    cases = {
        "not migrated": (create, env, "parley db upgrade"),
        "bad PORT": (("db", "upgrade"), {**env, "PORT": "eighty"}, "PORT"),
        "bad LOGIN_POLICY": (create, {**env, "LOGIN_POLICY": "sometimes"}, "LOGIN_POLICY"),
        "prod default secret": (("serve",), {**env, "APP_ENV": "prod"}, "JWT_SECRET"),
        "workers without Redis": (("serve", "--workers", "2"), env, "REDIS_URL"),
        "WORKERS without Redis": (("serve",), {**env, "WORKERS": "3"}, "WORKERS=3 needs REDIS_URL"),
        "bad --workers": (("serve", "--workers", "0"), env, "--workers"),
        "bad TRUSTED_PROXIES": (("serve",), {**env, "TRUSTED_PROXIES": "10.0.0.1/8"}, "TRUSTED_PROXIES"),
    }
    outcomes = run_together(tmp_path, {label: (args, environ) for label, (args, environ, _) in cases.items()})
    for label, (_, _, reason) in cases.items():
        outcome = outcomes[label]
        assert outcome.returncode != 0, label
        assert reason in outcome.stderr, (label, outcome.stderr)
        assert "Traceback" not in outcome.stderr, (label, outcome.stderr)


def test_a_database_that_cannot_be_used_is_named_in_one_line(tmp_path: Path) -> None:
    """Unreachable, missing, or refusing us: `db upgrade` and `serve` (with or without migrations)
    say so in one line naming DATABASE_URL, with the password hidden."""
    require_services()
    unreachable = f"postgresql+asyncpg://parley:secret-pw@127.0.0.1:{free_port()}/parley"
    missing = (
        f"postgresql+asyncpg://{PG_USER}:secret-pw@{PG_HOST}:{PG_PORT}/parley_missing_{uuid.uuid4().hex[:8]}"
    )
    cases = {
        "upgrade, unreachable": (("db", "upgrade"), unreachable, "Connect call failed"),
        "upgrade, missing": (("db", "upgrade"), missing, "does not exist"),
        "serve, missing": (("serve",), missing, "does not exist"),
        "serve --no-migrate, missing": (("serve", "--no-migrate"), missing, "does not exist"),
    }
    outcomes = run_together(
        tmp_path, {label: (args, {"DATABASE_URL": url}) for label, (args, url, _) in cases.items()}
    )
    for label, (_, _, reason) in cases.items():
        outcome = outcomes[label]
        assert outcome.returncode == 1, (label, outcome.stderr)
        lines = outcome.stderr.strip().splitlines()
        assert len(lines) == 1, (label, outcome.stderr)
        assert "DATABASE_URL" in lines[0], label
        assert reason in lines[0], (label, lines[0])
        assert "secret-pw" not in lines[0], label


def test_workers_on_a_port_in_use_stop_with_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            tmp_path,
            "serve", "--workers", "2", "--port", str(port),
            **env, REDIS_URL="redis://127.0.0.1:6379/0",
        )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_modules_that_cannot_be_composed_stop_the_command_in_one_line(tmp_path: Path) -> None:
    """A module named by PARLEY_MODULES that cannot be found, whose requirement nobody provides, or
    that sits in a cycle: every command that composes modules exits 1 with one line, before it
    touches the database."""
    database = tmp_path / "untouched.db"
    faults = "tests.support.module_faults"
    modules = {
        "missing provider": (
            f"{faults}:lonely",
            f"module 'lonely' requires {faults}.Referee, which no module provides",
        ),
        "cycle": (
            f"{faults}:chicken,{faults}:egg",
            "modules require each other in a cycle: chicken -> egg -> chicken",
        ),
        "unknown": (
            "no_such_package:module",
            "PARLEY_MODULES: 'no_such_package:module' is no installed entry point",
        ),
    }
    commands = {
        f"{label}, {' '.join(args)}": (args, modules_named, reason)
        for label, (modules_named, reason) in modules.items()
        for args in (("serve", "--port", str(free_port())), ("docs", "spec"))
    }
    commands["unknown, db upgrade"] = (("db", "upgrade"), *modules["unknown"])
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "PYTHONPATH": str(ROOT)}
    outcomes = run_together(
        tmp_path,
        {label: (args, {**env, "PARLEY_MODULES": named}) for label, (args, named, _) in commands.items()},
    )
    for label, (_, _, reason) in commands.items():
        outcome = outcomes[label]
        assert outcome.returncode == 1, (label, outcome.stderr)
        lines = outcome.stderr.strip().splitlines()
        assert len(lines) == 1, (label, outcome.stderr)
        assert reason in lines[0], (label, lines[0])
    assert not database.exists()


def test_revisions_of_a_module_no_longer_named_stop_the_upgrade_in_one_line(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with_game = run(tmp_path, "db", "upgrade", **env, PARLEY_MODULES="game")
    assert with_game.returncode == 0, with_game.stderr
    without = run(tmp_path, "db", "upgrade", **env)
    assert without.returncode == 1
    lines = without.stderr.strip().splitlines()
    assert len(lines) == 1, without.stderr
    assert "game_0001" in lines[0]
    assert "PARLEY_MODULES" in lines[0]
    assert "parley db downgrade NAME@base" in lines[0]
