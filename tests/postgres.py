"""A real PostgreSQL for the tests: a fresh database per deployment, and ways to look at
what the server keeps (table contents, its files on disk)."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

T = TypeVar("T")
ADMIN_URL = os.environ.get(
    "ASHIATO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
_created: list[str] = []


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work from sync test code (on its own thread: Playwright's sync API keeps
    an event loop running on this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()  # type: ignore[arg-type]


def url_of(database: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


def name_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def _admin(sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@cache
def unreachable() -> str | None:
    """Why the test server cannot be used, or None."""
    try:
        run(lambda: _admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None


def require() -> None:
    """Skip the calling test when PostgreSQL is down, unless CI=true: then fail it."""
    reason = unreachable()
    if reason is None:
        return
    message = f"PostgreSQL not reachable at {ADMIN_URL} ({reason}); start it with: {START}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def create_database(prefix: str) -> str:
    """A new empty database named ``<prefix>_<random>``; its URL."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    run(lambda: _admin(f'CREATE DATABASE "{name}"'))
    _created.append(name)
    return url_of(name)


def created() -> int:
    return len(_created)


def drop_created(since: int = 0) -> None:
    """Drop the databases created since ``created()`` returned ``since`` (a server left
    running by a failed test loses its connections)."""
    names, _created[since:] = _created[since:], []

    async def drop() -> None:
        for name in names:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    if names:
        run(drop)


def copy_database(source_url: str, prefix: str) -> str:
    """A copy of a database no one is connected to (a cold backup, or a restore)."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    run(lambda: _admin(f'CREATE DATABASE "{name}" TEMPLATE "{name_of(source_url)}"'))
    _created.append(name)
    return url_of(name)


def replace_database(url: str, source_url: str) -> None:
    """Restore: ``url`` becomes a copy of ``source_url`` (nobody may use either)."""

    async def replace() -> None:
        await _admin(f'DROP DATABASE "{name_of(url)}" WITH (FORCE)')
        await _admin(f'CREATE DATABASE "{name_of(url)}" TEMPLATE "{name_of(source_url)}"')

    run(replace)


def execute(url: str, sql: str) -> None:
    async def work() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run(work)


def table_hits(urls: list[str], needles: list[str]) -> list[tuple[str, str]]:
    """(database.table, needle) for every needle found in any value of any table: text as
    UTF-8, bytea as its raw bytes (what ``pg_dump`` would write, without its escaping)."""

    async def scan(url: str) -> list[tuple[str, str]]:
        conn = await asyncpg.connect(url, timeout=5)
        found = []
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
            for (table,) in tables:
                data = b"\n".join(
                    _raw(value)
                    for row in await conn.fetch(f'SELECT * FROM "{table}"')
                    for value in row
                )
                found += [(f"{name_of(url)}.{table}", n) for n in needles if n.encode() in data]
        finally:
            await conn.close()
        return found

    return [hit for url in urls for hit in run(lambda url=url: scan(url))]  # type: ignore[misc]


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, list):
        return b"\n".join(_raw(v) for v in value)
    return str(value).encode()


def files_of(urls: list[str], since: float) -> list[Path]:
    """The server's files holding these databases (after a CHECKPOINT, so every change is
    in them) and the WAL segments written since ``since`` (a time.time()).

    Needs read access to the data directory (root, as CI runs)."""

    async def locate() -> tuple[str, list[int]]:
        await _admin("CHECKPOINT")
        data = (await _admin("SELECT current_setting('data_directory')"))[0][0]
        oids = await _admin(
            "SELECT oid FROM pg_database WHERE datname = ANY($1::text[])",
            [name_of(u) for u in urls],
        )
        return str(data), [int(r[0]) for r in oids]

    data_dir, oids = run(locate)
    root = Path(data_dir)
    if not os.access(root, os.R_OK | os.X_OK):
        pytest.skip(f"cannot read PostgreSQL's files under {root} (run as root)")
    files = [p for oid in oids for p in (root / "base" / str(oid)).iterdir() if p.is_file()]
    wal = [p for p in (root / "pg_wal").iterdir() if p.is_file() and p.stat().st_mtime >= since - 1]
    return files + wal


@contextmanager
def holding(url: str, sql: str) -> Iterator[None]:
    """Another session holds what ``sql`` takes (e.g. a table lock) inside a transaction
    until the block ends, as another process would."""
    taken, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            async with conn.transaction():
                await conn.execute(sql)
                taken.set()
                await asyncio.to_thread(release.wait)
        finally:
            await conn.close()

    def main() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:
            failure.append(exc)
            taken.set()

    thread = threading.Thread(target=main)
    thread.start()
    taken.wait(10)
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        release.set()
        thread.join(10)
