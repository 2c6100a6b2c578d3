"""Scripts' steps in PostgreSQL's words, run on an asyncpg connection.

See ``tracker.storage.script`` for the conventions translated here: ``?`` becomes
``$1, $2, …``; ``IN ?`` becomes ``= ANY($n)`` (the list goes as an array, as does a
``TextArray``); a ``Lock`` takes transaction-scoped advisory locks in the order given, a
``TableLock`` a table lock in SHARE mode; an ``Insert`` is a COPY (one round trip for the
whole batch, routed to partitions by the server).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import asyncpg

from tracker.storage.script import Fetch, Insert, Lock, Sql, Step, TableLock, TextArray

_IN_LIST = re.compile(r"\bIN \?")


@lru_cache(maxsize=64)
def insert_text(table: str, columns: tuple[str, ...], on_conflict: str) -> str:
    values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON CONFLICT {on_conflict}"


@lru_cache(maxsize=1024)
def text_of(text: str) -> str:
    """The PostgreSQL text of a script's statement."""
    text = _IN_LIST.sub("= ANY(?)", text)
    parts = text.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))


def args_of(args: tuple[Any, ...]) -> list[Any]:
    return [list(arg) if isinstance(arg, tuple) else _array(arg) for arg in args]


def _array(arg: Any) -> Any:
    return list(arg.items) if isinstance(arg, TextArray) else arg


def count_of(status: str) -> int:
    """The row count of a command status such as ``DELETE 3`` or ``INSERT 0 1``."""
    return int(status.rsplit(" ", 1)[-1])


async def execute(conn: asyncpg.Connection, step: Step) -> Any:
    if isinstance(step, Lock | TableLock):
        return await _lock(conn, step)
    if isinstance(step, Insert):
        if step.rows and step.on_conflict:
            await conn.executemany(insert_text(step.table, step.columns, step.on_conflict),
                                   step.rows)  # fmt: skip
        elif step.rows:
            await conn.copy_records_to_table(step.table, records=step.rows,
                                             columns=list(step.columns))  # fmt: skip
        return None
    assert isinstance(step, Sql)
    text, args = text_of(step.text), args_of(step.args)
    if step.fetch is Fetch.ROWS:
        return await conn.fetch(text, *args)
    if step.fetch is Fetch.ROW:
        return await conn.fetchrow(text, *args)
    if step.fetch is Fetch.VALUE:
        return await conn.fetchval(text, *args)
    status = await conn.execute(text, *args)
    return count_of(status) if step.fetch is Fetch.COUNT else None


async def _lock(conn: asyncpg.Connection, step: Lock | TableLock) -> None:
    if isinstance(step, TableLock):
        await conn.execute(f"SET LOCAL lock_timeout = {int(step.wait_ms)}")
        await conn.execute(f"LOCK TABLE {step.table} IN SHARE MODE")
        return
    function = "pg_advisory_xact_lock_shared" if step.shared else "pg_advisory_xact_lock"
    if len(step.keys) == 1:
        await conn.execute(f"SELECT {function}($1, $2)", int(step.name), step.keys[0])
        return
    # unnest yields the keys in the order given, so the locks are taken in that order.
    await conn.execute(f"SELECT {function}($1, k) FROM unnest($2::integer[]) AS k",
                       int(step.name), list(step.keys))  # fmt: skip
