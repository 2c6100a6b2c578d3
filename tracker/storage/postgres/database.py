"""One PostgreSQL database: a lazily opened asyncpg pool, transactions, migrations.

Several collector processes may share one database, so what the SQLite backend gets
from its single writer is asked of PostgreSQL here: unique constraints with
``ON CONFLICT``, row locks (``SELECT … FOR UPDATE``) and transaction-scoped advisory
locks (``Lock``), always taken in the order the enum lists them, so two transactions
never wait on each other in a circle. A write transaction is a coroutine of one
connection run whole inside ``BEGIN`` … ``COMMIT`` (``_transaction``), as the SQLite
backend runs a function of its connection.

``lock_timeout`` plays the part of SQLite's ``busy_timeout``: a statement that waits on
a lock longer than that fails, and the caller sees StorageError (the collector answers
503 with Retry-After) rather than a request that hangs. Commits are durable on return
(``synchronous_commit`` is the server's, on by default).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import asyncpg

from tracker.errors import StorageError
from tracker.storage.migrations_runner import pending
from tracker.storage.postgres import dialect
from tracker.storage.script import (
    LockName,
    Script,
    ScriptFactory,
    drive_async,
    in_lanes,
)

T = TypeVar("T")

POOL_SIZE = 8
"""Connections per process. The collector writes through one group-commit writer, so
most of these serve API reads; N collector processes use up to N x 8 (+ the key store's)."""
READ_LANES = 4
"""Pooled connections one ``read_all`` uses at once (half the pool: the rest serve
everyone else); on the 10M-event dashboard 4 gave 171-188 ms, 2 gave 230-238 ms, 14
(every script at once) 186-197 ms."""
LOCK_TIMEOUT_MS = 5_000
CONNECT_TIMEOUT = 5.0


Lock = LockName  # the advisory lock namespaces (tracker.storage.script)


async def lock(conn: asyncpg.Connection, namespace: Lock, key: int = 0, *,
               shared: bool = False) -> None:  # fmt: skip
    """Take a transaction-scoped advisory lock (released at commit or rollback)."""
    if shared:
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1, $2)", int(namespace), key)
    else:
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", int(namespace), key)


# A deadlock or serialization failure rolls the whole transaction back: run it again
# (``work`` only talks to the database, so it can), a few times, after a short pause.
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
RETRIES = 3
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def guard(awaitable: Awaitable[T]) -> T:
    """Turn driver errors into StorageError; the message names no data, only the cause
    (a server message may quote a value, so only its class and SQLSTATE are kept)."""
    try:
        return await awaitable
    except asyncpg.IntegrityConstraintViolationError:
        raise
    except _DRIVER_ERRORS as exc:
        raise StorageError(f"database unavailable: {_cause(exc)}") from exc


def _cause(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.LockNotAvailableError):
        return "locked (lock_timeout)"
    if isinstance(exc, asyncpg.PostgresError):
        return f"{exc.__class__.__name__} ({exc.sqlstate})"
    return f"{exc.__class__.__name__}: {exc}"


class PostgresDatabase:
    """A database URL with its pool (opened on first use) and its migrations."""

    migrations_folder = ""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._open_lock = asyncio.Lock()

    async def _connect(self) -> asyncpg.Connection:
        return await guard(asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT,
                                            server_settings=_SESSION))  # fmt: skip

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._open_lock:
                if self._pool is None:
                    self._pool = await guard(asyncpg.create_pool(
                        self.url, min_size=1, max_size=POOL_SIZE, timeout=CONNECT_TIMEOUT,
                        server_settings=_SESSION,
                    ))  # fmt: skip
        return self._pool

    async def _transaction(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """The one way to write: ``work`` runs whole inside one transaction."""

        async def run() -> T:
            for attempt in range(RETRIES):
                try:
                    async with (await self.pool()).acquire() as conn, conn.transaction():
                        return await work(conn)
                except _RETRYABLE:
                    if attempt == RETRIES - 1:
                        raise
                    await asyncio.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
            raise AssertionError("unreachable")

        return await guard(run())

    async def transact(self, script: ScriptFactory[T]) -> T:
        """Run a write script whole in one transaction (from a fresh script if retried)."""

        async def work(conn: asyncpg.Connection) -> T:
            return await drive_async(script(), partial(dialect.execute, conn))

        return await self._transaction(work)

    async def read_behind(self, script: Script[T]) -> T:
        """A read for background work: here a read like any other (the work runs on the
        database server, not in this process)."""
        return await self.read(script)

    async def read_all(self, scripts: Sequence[Script[Any]]) -> list[Any]:
        """Independent read scripts (the dashboard's) side by side, each on a pooled
        connection, ``READ_LANES`` at a time; results in the order given."""
        return await in_lanes(scripts, [self.read] * READ_LANES)

    async def read(self, script: Script[T]) -> T:
        """Run a read script on one pooled connection (each statement sees what is
        committed when it starts)."""

        async def work() -> T:
            async with (await self.pool()).acquire() as conn:
                return await drive_async(script, partial(dialect.execute, conn))

        return await guard(work())

    async def _read_value(self, sql: str, *args: Any) -> Any:
        return await guard(self._fetchval(sql, args))

    async def _fetchval(self, sql: str, args: tuple[Any, ...]) -> Any:
        return await (await self.pool()).fetchval(sql, *args)

    async def truncate_wal(self) -> bool:
        """Nothing to do: PostgreSQL's WAL belongs to the server (shared by every database,
        recycled at checkpoints, needed by replicas and point-in-time recovery); no client
        can or should cut it. What an erasure must leave unreadable is personal data, and
        that reaches the database only as ciphertext whose key the erasure destroys."""
        return True

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def ping(self) -> None:
        await self._read_value("SELECT 1")

    async def schema_version(self) -> int:
        if await self._read_value("SELECT to_regclass('schema_migrations')") is None:
            return 0
        return int(
            await self._read_value("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        )

    async def migrate(self) -> list[int]:
        """Apply pending migrations, each in one transaction; return the versions applied.

        A session advisory lock makes processes that start together take turns: the
        first applies, the others then find nothing left to do. Its own connection waits
        without ``lock_timeout`` (a migration may take longer than that)."""
        conn = await self._connect()
        try:
            await guard(conn.execute("SET lock_timeout = 0"))
            await guard(conn.execute("SELECT pg_advisory_lock($1)", int(Lock.MIGRATE)))
            return await guard(self._migrate(conn))
        finally:
            await conn.close()  # the session lock goes with the session

    async def _migrate(self, conn: asyncpg.Connection) -> list[int]:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at bigint NOT NULL)"
        )
        done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in pending(self.migrations_folder, done):
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                                   version, name, now_ms())  # fmt: skip
            applied.append(version)
        await self._after_migrate(conn)
        return applied

    async def _after_migrate(self, conn: asyncpg.Connection) -> None:
        """Upkeep done at start, under the migration lock (the data store's partitions)."""


_SESSION = {"lock_timeout": str(LOCK_TIMEOUT_MS), "application_name": "ashiato"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000
