"""The chat writer's one statement alone, on PostgreSQL: `python -m bench.statement [options]`.

The database's part of a `chat:send` batch, with no server and no other load: `STORE_AT_ONCE`
(app/modules/chat/pg_statements.py) run as the writer runs it (prepared once, under `WRITER_SETTINGS`,
committing on its own) on a fresh database migrated to `--revision` (head by default; `0005` has
the sender-read trigger that runs once per message), where one user is in `--conversations` group
conversations. Each batch holds `--size` new messages spread over the conversations, or all to the
first with `--hot`. Prints the milliseconds per batch (median and 90th percentile of `--batches`,
after `--warmup`), one line per repetition; `--revision` given twice or more compares them, the
revisions taking turns.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
import uuid
from typing import Any

import asyncpg

from app.config.settings import Settings
from app.db.migrate import upgrade
from app.modules.chat.pg_statements import STORE_AT_ONCE, WRITER_SETTINGS
from bench.run import DEFAULT_POSTGRES_URL, postgres_database

BODY = "hello from the statement bench"


def migrated(database_url: str, revision: str) -> None:
    """Parley's schema on `database_url`, up to `revision`."""
    settings = Settings.from_env({"DATABASE_URL": database_url, "REDIS_URL": ""}, env_file=None)
    upgrade(settings, revision)


async def one_user_in(
    connection: asyncpg.Connection, conversations: int
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A user, and the group conversations they are the one participant of."""
    user = uuid.uuid4()
    await connection.execute(
        "INSERT INTO users (id, username, display_name, username_skeleton)"
        " VALUES ($1, 'bench', 'Bench', 'bench')",
        user,
    )
    ids = [uuid.uuid4() for _ in range(conversations)]
    for conversation in ids:
        await connection.execute(
            "INSERT INTO conversations (id, kind, title, last_seq) VALUES ($1, 'group', 'bench', 0)",
            conversation,
        )
        await connection.execute(
            "INSERT INTO conversation_participants (id, conversation_id, user_id, role)"
            " VALUES ($1, $2, $3, 'owner')",
            uuid.uuid4(),
            conversation,
            user,
        )
    return user, ids


def batch(user: uuid.UUID, conversations: list[uuid.UUID], size: int, number: int, *, hot: bool) -> list[Any]:
    """`STORE_AT_ONCE`'s arguments for `size` new messages without mentions."""
    targets = [
        conversations[0] if hot else conversations[(number + k) % len(conversations)] for k in range(size)
    ]
    return [
        [uuid.uuid4() for _ in range(size)],
        targets,
        [user] * size,
        [BODY] * size,
        [secrets.token_hex(8) for _ in range(size)],
        [],
        [],
        [],
        [],
        [],
    ]


async def timed(database_url: str, args: argparse.Namespace) -> list[float]:
    """Seconds per batch, after the warm-up."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        user, conversations = await one_user_in(connection, args.conversations)
        await connection.execute(WRITER_SETTINGS)
        statement = await connection.prepare(STORE_AT_ONCE)
        took = []
        for number in range(args.warmup + args.batches):
            arguments = batch(user, conversations, args.size, number, hot=args.hot)
            started = time.perf_counter()
            await statement.fetch(*arguments)
            took.append(time.perf_counter() - started)
        return took[args.warmup :]
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statement", description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="where the scratch databases go")
    parser.add_argument(
        "--revision", action="append", help="the schema's revision (default head; repeatable)"
    )
    parser.add_argument("--size", type=int, default=10, help="messages per batch (default 10)")
    parser.add_argument("--conversations", type=int, default=10, help="group conversations (default 10)")
    parser.add_argument("--hot", action="store_true", help="every message to one conversation")
    parser.add_argument("--batches", type=int, default=1000, help="batches timed (default 1000)")
    parser.add_argument("--warmup", type=int, default=200, help="batches first left out (default 200)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions, each on a fresh database")
    args = parser.parse_args(argv)
    where = "one conversation" if args.hot else f"{args.conversations} conversations"
    shape = f"{args.size} messages per batch, {where}"
    print(f"STORE_AT_ONCE, {shape}: ms per batch (median / p90)")
    for rep in range(args.reps):
        for revision in args.revision or ["heads"]:
            with postgres_database(args.postgres_url) as database_url:
                migrated(database_url, revision)
                took = sorted(asyncio.run(timed(database_url, args)))
            median, p90 = statistics.median(took), took[int(len(took) * 0.9)]
            print(f"  {rep + 1}  revision {revision:>6}: {median * 1000:.3f} / {p90 * 1000:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
