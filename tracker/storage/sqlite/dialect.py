"""Scripts' steps in SQLite's words, run on a ``sqlite3`` connection.

See ``tracker.storage.script`` for the conventions translated here: ``IN ?`` with a
list becomes ``IN (?, ?, …)``; ``GREATEST``/``LEAST`` become SQLite's two-argument
``MAX``/``MIN``; ``IS NOT DISTINCT FROM`` becomes ``IS`` (SQLite before 3.39 lacks the
long form); a ``TextArray`` is bound as JSON text; row locks and advisory locks go (one
writer needs none).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson

from tracker.storage.script import Fetch, Insert, Lock, Sql, Step, TableLock, TextArray

_ROW_LOCK = re.compile(r"\s+FOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b")
_WORDS = (("GREATEST(", "MAX("), ("LEAST(", "MIN("), (" IS NOT DISTINCT FROM ", " IS "))


@lru_cache(maxsize=1024)
def _static(text: str) -> str:
    text = _ROW_LOCK.sub("", text)
    for word, sqlite_word in _WORDS:
        text = text.replace(word, sqlite_word)
    return text


def statement(text: str, args: Sequence[Any]) -> tuple[str, Sequence[Any]]:
    """The SQLite text and flat arguments of a script's statement."""
    text = _static(text)
    if not any(isinstance(arg, list | tuple | TextArray) for arg in args):
        return text, args
    parts, flat = text.split("?"), list[Any]()
    out = [parts[0]]
    for arg, part in zip(args, parts[1:], strict=True):
        if isinstance(arg, list | tuple):
            out.append(f"({', '.join('?' * len(arg))})")
            flat.extend(arg)
        else:
            out.append("?")
            flat.append(orjson.dumps(arg.items).decode() if isinstance(arg, TextArray) else arg)
        out.append(part)
    return "".join(out), flat


@lru_cache(maxsize=64)
def insert_text(table: str, columns: tuple[str, ...], on_conflict: str = "") -> str:
    text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    return f"{text} ON CONFLICT {on_conflict}" if on_conflict else text


def execute(conn: sqlite3.Connection, step: Step) -> Any:
    """Answer one step on ``conn`` (the writer's, inside its transaction)."""
    if isinstance(step, Lock | TableLock):
        return None
    if isinstance(step, Insert):
        if step.rows:
            conn.executemany(insert_text(step.table, step.columns, step.on_conflict), step.rows)
        return None
    assert isinstance(step, Sql)
    cursor = conn.execute(*statement(step.text, step.args))
    try:
        return answer(step.fetch, cursor.fetchall(), cursor.rowcount)
    finally:
        cursor.close()


def answer(fetch: Fetch, found: list[Any], changed: int) -> Any:
    if fetch is Fetch.ROWS:
        return found
    if fetch is Fetch.ROW:
        return found[0] if found else None
    if fetch is Fetch.VALUE:
        return found[0][0] if found else None
    if fetch is Fetch.COUNT:
        return changed
    return None
