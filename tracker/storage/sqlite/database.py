"""One SQLite database done right: one writer thread, a reader, WAL, migrations.

Every write transaction is a plain function of a ``sqlite3.Connection`` run whole on
the single writer thread inside ``BEGIN IMMEDIATE`` (as datasette's
``execute_write_fn``), so writers never interleave and a transaction crosses threads
once. Readers use their own aiosqlite connection and see committed data only (WAL).
``synchronous=FULL`` makes a commit durable when it returns, which is the promise the
collector gives a client before answering 2xx. ``secure_delete`` zeroes deleted content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from tracker.errors import StorageError
from tracker.storage.migrations_runner import pending
from tracker.storage.script import (
    Script,
    ScriptFactory,
    Sql,
    Step,
    drive,
    drive_async,
    in_lanes,
)
from tracker.storage.sqlite import dialect

T = TypeVar("T")
log = logging.getLogger("ashiato.sqlite")

BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another connection's lock before "database is locked"."""
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
)
# The writer never checkpoints in its own commits (a 4 MB checkpoint stalls every
# waiting request for tens of ms); a separate connection does it in the background
# every CHECKPOINT_EVERY seconds. The writer's own autocheckpoint stays as a safety
# net should the background one fall far behind. A 4 MiB page cache (SQLite's default
# is 2 MiB) keeps the hot pages of the visitor index in memory: 8 MiB gave +5 % page
# views a second in bench/collector.py on an earlier build, for the 4 MiB more RSS that
# the collector's 80 MiB budget no longer has (32 MiB bought nothing more).
_WRITER_PRAGMAS = ("PRAGMA wal_autocheckpoint=20000", "PRAGMA cache_size=-4096")
CHECKPOINT_EVERY = 1.0


def _lowest_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # Linux sets it per thread
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _guard_sync(work: Callable[[], T]) -> T:
    try:
        return work()
    except sqlite3.IntegrityError:
        raise
    except (sqlite3.DatabaseError, OSError) as exc:  # locked, full, I/O error, corrupt
        raise StorageError(f"database unavailable: {exc.__class__.__name__}: {exc}") from exc


async def _guard(awaitable: Awaitable[T]) -> T:
    """Turn driver errors into StorageError; the message names no data, only the cause."""
    try:
        return await awaitable
    except sqlite3.IntegrityError:
        raise
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StorageError(f"database unavailable: {exc.__class__.__name__}: {exc}") from exc


class WriteThread:
    """The one writer: one connection on one thread, each transaction run whole there.

    A write transaction is a plain function of a ``sqlite3.Connection``; it crosses to
    the thread once and comes back once (as datasette's ``execute_write_fn``), instead
    of one hop per statement, which under load cost more than the SQL itself.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ashiato-sqlite-writer")

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the writer thread, outside any transaction."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` on the writer thread."""
        return await self.call(partial(_in_transaction, work))

    async def close(self) -> None:
        if self._conn is not None:
            await self.call(_close)
            self._conn = None
        self._executor.shutdown(wait=True)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = _guard_sync(lambda: _open(self._path, *_WRITER_PRAGMAS))
        conn = self._conn
        return _guard_sync(lambda: work(conn))


def create_private(path: Path) -> None:
    """Create the database file owner-only (0600) unless it exists, before SQLite would
    create it 0644; SQLite gives the -wal and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _open(path: Path, *pragmas: str) -> sqlite3.Connection:
    create_private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (*_PRAGMAS, *pragmas):
        conn.execute(pragma)
    return conn


def _in_transaction(work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    _begin_immediate(conn)
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # SQLite may have rolled back by itself already (disk full, I/O error).
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


BEGIN_RETRY_MAX_S = 0.001


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting up to the busy timeout for another process's write
    transaction (``serve --workers 2``, a CLI command) as SQLite would, but trying again
    every 0.1 to 1 ms: SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ms… between
    tries, so two collectors on one file, whose commits take turns a few milliseconds
    apart, spent their time asleep and served fewer beacons than one (``--workers 2``
    at 92 % of one worker in bench/collector.py; 128–134 % with this)."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.0001
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if str(exc) != "database is locked" or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, BEGIN_RETRY_MAX_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _close(conn: sqlite3.Connection) -> None:
    # Leave a small file behind: fold the WAL into the database and truncate it.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


class SQLiteDatabase:
    """A database file with its writer thread, a lazily opened reader and checkpointer."""

    migrations_folder = ""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer = WriteThread(self.path)
        self._readers: dict[str, aiosqlite.Connection] = {}
        """Read-only connections, opened when first used: ``reader``; ``aside`` (a second
        one for ``read_all``); ``behind`` (background work, lowest CPU priority)."""
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._last_checkpoint = time.monotonic()
        self._open_lock = asyncio.Lock()

    async def _connect(self, *pragmas: str) -> aiosqlite.Connection:
        create_private(self.path)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in (*_PRAGMAS, *pragmas):
            await conn.execute(pragma)
        return conn

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """The one way to write: serialised on the writer thread, ``BEGIN IMMEDIATE``."""
        result = await self._writer.transaction(work)
        self._after_commit()
        return result

    def _after_commit(self) -> None:
        now = time.monotonic()
        if self._checkpoint_task is None and now - self._last_checkpoint > CHECKPOINT_EVERY:
            self._last_checkpoint = now
            self._checkpoint_task = asyncio.create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy committed WAL pages into the database without blocking the writer."""
        try:
            if self._checkpointer is None:
                self._checkpointer = await self._connect()
            await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("background checkpoint failed", extra={"cause": str(exc)})
        finally:
            self._checkpoint_task = None

    async def transact(self, script: ScriptFactory[T]) -> T:
        """Run a write script whole on the writer thread, in one transaction."""
        return await self._write(lambda conn: drive(script(), partial(dialect.execute, conn)))

    async def read(self, script: Script[T]) -> T:
        """Run a read script on the reader connection (committed data only)."""
        return await self._read_on("reader", script)

    async def read_all(self, scripts: Sequence[Script[Any]]) -> list[Any]:
        """Independent read scripts (the dashboard's) two at a time: on the reader and on
        a second connection, so two queries use two cores (sqlite3 lets go of the GIL
        while SQLite works); results in the order given."""
        lanes = [partial(self._read_on, name) for name in ("reader", "aside")]
        return await in_lanes(scripts, lanes)

    async def _read_on(self, name: str, script: Script[T]) -> T:
        return await drive_async(script, partial(self._read_step, name))

    async def read_behind(self, script: Script[T]) -> T:
        """A read for background work (the roll-ups' catch-up), on a connection of its own
        whose thread runs at the lowest CPU priority: when the machine is busy, ingest's
        writer and the API's reads go first (``bench/console.py --ingest``: p99 17 ms
        instead of 22, and a steadier share of the floor)."""
        return await self._read_on("behind", script)

    async def _read_step(self, name: str, step: Step) -> Any:
        assert isinstance(step, Sql), "a read script only reads"
        found = await self._read(*dialect.statement(step.text, step.args), on=name)
        return dialect.answer(step.fetch, found, -1)

    async def _read(self, sql: str, params: Iterable[Any] = (), *, on: str = "reader") -> list[Any]:
        conn = self._readers.get(on)
        if conn is None:
            async with self._open_lock:
                if (conn := self._readers.get(on)) is None:
                    conn = await _guard(self._connect("PRAGMA query_only=ON"))
                    if on == "behind":  # a function runs on the connection's own thread
                        await conn.create_function("ashiato_behind", 0, _lowest_priority)
                        await conn.execute("SELECT ashiato_behind()")
                    self._readers[on] = conn
        return list(await _guard(conn.execute_fetchall(sql, tuple(params))))

    async def truncate_wal(self) -> bool:
        """Fold the WAL into the database and truncate it, so deleted personal data does not
        linger in old WAL frames; False if readers kept it busy (retried a few times)."""
        for attempt in range(5):
            if self._checkpoint_task is not None:  # a PASSIVE one would make this busy
                await self._checkpoint_task
            # Reading the result closes the statement (an open one breaks the next COMMIT).
            busy, _, _ = await self._writer.call(
                lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            )
            if not busy:
                return True
            await asyncio.sleep(0.05 * (attempt + 1))
        log.warning("WAL not truncated: readers kept it busy", extra={"db": self.path.name})
        return False

    async def drop_expired_partitions(self, before: int) -> int:
        """Events are one table here, not partitions: nothing to drop (retention purges
        them row by row)."""
        return 0

    async def close(self) -> None:
        if self._checkpoint_task is not None:
            await self._checkpoint_task
        for conn in (*self._readers.values(), self._checkpointer):
            if conn is not None:
                await conn.close()
        self._readers, self._checkpointer = {}, None
        await self._writer.close()

    async def ping(self) -> None:
        await _guard(self._read("SELECT 1"))

    async def schema_version(self) -> int:
        rows = await self._read(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
        )
        if not rows:
            return 0
        rows = await self._read("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    async def migrate(self) -> list[int]:
        """Apply pending migrations, each in one transaction; return the versions applied."""
        await self._writer.call(lambda db: db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        ))  # fmt: skip
        done = {row[0] for row in await self._read("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in pending(self.migrations_folder, done):
            await self._writer.call(partial(_apply_migration, version, name, sql))
            applied.append(version)
        return applied


def _apply_migration(version: int, name: str, sql: str, db: sqlite3.Connection) -> None:
    # executescript commits first, so the script carries its own transaction.
    # Migration names come from our own file names, never from input.
    record = f"INSERT INTO schema_migrations VALUES ({version}, '{name}', {now_ms()});"
    try:
        db.executescript(f"BEGIN IMMEDIATE;\n{sql}\n{record}\nCOMMIT;")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def now_ms() -> int:
    return time.time_ns() // 1_000_000
