"""Transactions written once, run by either backend (sans-IO, as h11's connection).

A *script* is a generator that yields what it wants done and receives the answer: a
statement (``Sql``), a bulk insert (``Insert``), an advisory lock (``Lock``) or a table
lock (``TableLock``). What it
returns is the transaction's result. Scripts hold a transaction's flow and its SQL
text, written once in the SQL both databases understand, with a few conventions that
each backend's dialect translates (``sqlite/dialect.py``, ``postgres/dialect.py``):

- ``?`` placeholders (PostgreSQL gets ``$1, $2, …``);
- ``col IN ?`` with a list or tuple argument (SQLite: ``IN (?, ?, …)``; PostgreSQL:
  ``= ANY($n)``); a list or tuple argument is allowed only there;
- ``GREATEST(a, b)`` / ``LEAST(a, b)`` (SQLite: its two-argument ``MAX`` / ``MIN``);
- ``a IS NOT DISTINCT FROM b``, equality where NULL equals NULL (SQLite: ``a IS b``);
- a ``TextArray`` argument, strings kept in one column (PostgreSQL: a ``text[]``;
  SQLite: a JSON array in ``TEXT``), read back with ``rows.text_array``;
- row locks (``FOR UPDATE``, ``FOR NO KEY UPDATE``, ``FOR SHARE``) and ``Lock`` steps
  mean something only where several processes share the database (PostgreSQL); the
  SQLite backend's single writer already runs one transaction at a time.

A backend runs a write script whole inside one transaction (``BEGIN IMMEDIATE`` on the
SQLite writer thread, synchronously, one thread hop per transaction; ``BEGIN`` on an
asyncpg connection, retried from a fresh script on deadlock), and a read script on a
reader connection. Scripts never catch driver errors: a failed statement ends the
transaction (``ON CONFLICT`` says what a clash means instead).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, TypeVar

T = TypeVar("T")


class Fetch(Enum):
    """What a statement's answer is."""

    NOTHING = "nothing"
    """None."""
    ROW = "row"
    """The first row (a tuple-like row), or None."""
    ROWS = "rows"
    """Every row, a list."""
    VALUE = "value"
    """The first column of the first row, or None."""
    COUNT = "count"
    """How many rows the statement inserted, changed or deleted."""


@dataclass(frozen=True, slots=True)
class Sql:
    text: str
    args: tuple[Any, ...] = ()
    fetch: Fetch = Fetch.NOTHING


@dataclass(frozen=True, slots=True)
class Insert:
    """Many rows into one table: ``executemany`` in SQLite, ``COPY`` in PostgreSQL.
    Answers None."""

    table: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    on_conflict: str = ""
    """What a clash means (the text after ``ON CONFLICT``, e.g. ``(k) DO NOTHING``); with
    one, PostgreSQL takes the rows with ``executemany`` too (COPY has no such clause)."""


@dataclass(frozen=True, slots=True)
class TextArray:
    """Strings bound to one column's placeholder (not an ``IN ?`` list)."""

    items: tuple[str, ...]


class LockName(IntEnum):
    """Advisory lock namespaces (PostgreSQL's ``pg_advisory_xact_lock(int, int)``).

    A transaction takes them in this order (a later one never before an earlier one),
    so two transactions never wait on each other in a circle."""

    MIGRATE = 0x41534801
    """Session lock around all migrations: collectors that start together wait in turn."""
    PARTITIONS = 0x41534802
    """Creating or dropping a monthly partition of ``events``."""
    VISITORS = 0x41534803
    """All visitors: shared by a transaction that locks some visitors one by one,
    exclusive by one that changes the consent of too many to lock singly."""
    VISITOR = 0x41534804
    """One visitor (second key: ``text_key(vid)``): its consent state and links."""
    LEAD_GRAPH = 0x41534805
    """Which lead stands for whom: shared by links, exclusive by merges and erasure."""
    CHANGES = 0x41534806
    """The change feed: held from a change's insert to commit, so ``seq`` order is
    commit order and a sync client reading ``seq > cursor`` never skips one."""
    AUDIT = 0x41534807
    """The audit chain: read the last MAC and append, one writer at a time."""


@dataclass(frozen=True, slots=True)
class Lock:
    """Transaction-scoped advisory locks: one per key, taken in the order given."""

    name: LockName
    keys: tuple[int, ...] = (0,)
    shared: bool = False


@dataclass(frozen=True, slots=True)
class TableLock:
    """PostgreSQL: ``LOCK TABLE … IN SHARE MODE``: wait for every open transaction that
    writes the table and keep new ones waiting until this one ends (SQLite: nothing; its
    single writer commits in id order). Take it in a transaction of its own. Writers
    queue behind a waiting one, so it waits ``wait_ms`` at most (then StorageError)."""

    table: str
    wait_ms: int = 100


Step = Sql | Insert | Lock | TableLock
Script = Generator[Step, Any, T]
ScriptFactory = Callable[[], Script[T]]
"""Makes the script afresh: a transaction retried after a deadlock starts over."""


def run(text: str, *args: Any) -> Sql:
    return Sql(text, args, Fetch.NOTHING)


def row(text: str, *args: Any) -> Sql:
    return Sql(text, args, Fetch.ROW)


def rows(text: str, *args: Any) -> Sql:
    return Sql(text, args, Fetch.ROWS)


def value(text: str, *args: Any) -> Sql:
    return Sql(text, args, Fetch.VALUE)


def count(text: str, *args: Any) -> Sql:
    return Sql(text, args, Fetch.COUNT)


def just(result: T) -> Script[T]:
    """A script that asks nothing and returns ``result`` (for a branch with no SQL)."""
    return result
    yield  # pragma: no cover - makes this a generator


def drive(script: Script[T], execute: Callable[[Step], Any]) -> T:
    """Run ``script`` to its end, answering each step with ``execute`` (synchronous)."""
    try:
        step = next(script)
        while True:
            step = script.send(execute(step))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        script.close()


async def drive_async(script: Script[T], execute: Callable[[Step], Awaitable[Any]]) -> T:
    """Run ``script`` to its end, answering each step with ``execute`` (asynchronous)."""
    try:
        step = next(script)
        while True:
            step = script.send(await execute(step))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        script.close()


async def in_lanes(
    scripts: Sequence[Script[Any]], lanes: Sequence[Callable[[Script[Any]], Awaitable[Any]]]
) -> list[Any]:
    """Run independent read scripts side by side, one per lane (a connection) at a time,
    each taking the next free lane; their results in the order given."""
    free: asyncio.Queue[Callable[[Script[Any]], Awaitable[Any]]] = asyncio.Queue()
    for lane in lanes:
        free.put_nowait(lane)

    async def one(script: Script[Any]) -> Any:
        lane = await free.get()
        try:
            return await lane(script)
        finally:
            free.put_nowait(lane)

    return list(await asyncio.gather(*(one(script) for script in scripts)))


def text_key(text: str) -> int:
    """A stable signed 32-bit key for ``text`` (the second advisory-lock key)."""
    digest = hashlib.blake2b(text.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


MANY_VISITORS = 32
"""More distinct visitors than this in one transaction: lock them all at once."""


def lock_visitors(vids: Iterable[str]) -> Script[None]:
    """Serialise changes to these visitors' consent and links across processes (what
    SQLite's single writer does): one lock each, in key order, or, for many, one lock on
    all visitors (which keeps the number of locks a transaction holds small)."""
    keys = tuple(sorted({text_key(vid) for vid in vids}))
    if not keys:
        return
    if len(keys) > MANY_VISITORS:
        yield Lock(LockName.VISITORS)
        return
    yield Lock(LockName.VISITORS, shared=True)
    yield Lock(LockName.VISITOR, keys)
