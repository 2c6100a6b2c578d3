"""Transaction scripts (tracker.storage.script): one script, the same answers from both
databases; each dialect's translation of the shared conventions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests import postgres
from tracker.storage.postgres import dialect as pg
from tracker.storage.postgres.database import PostgresDatabase
from tracker.storage.rows import text_array
from tracker.storage.script import (
    Insert,
    Lock,
    LockName,
    Script,
    TextArray,
    count,
    lock_visitors,
    row,
    rows,
    run,
    value,
)
from tracker.storage.sqlite import dialect as lite
from tracker.storage.sqlite.database import SQLiteDatabase

Database = SQLiteDatabase | PostgresDatabase


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    db: Database
    if backend == "sqlite":
        db = SQLiteDatabase(tmp_path / "script.db")
    else:
        db = PostgresDatabase(postgres.create_database("ashiato_t"))
    await db.transact(_create)
    yield db
    await db.close()


def _create() -> Script[None]:
    yield run("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT NOT NULL, n BIGINT NOT NULL)")


def _fill_and_ask() -> Script[dict[str, Any]]:
    yield Lock(LockName.LEAD_GRAPH, shared=True)
    yield from lock_visitors(["a" * 32, "b" * 32])
    yield Insert("t", ("id", "name", "n"), [(1, "one", 10), (2, "two", 20), (3, "three", 30)])
    raised = yield count(
        "UPDATE t SET n = GREATEST(n, ?) WHERE id IN ? AND n < ?", 25, [1, 2, 3], 25
    )
    first = yield row("SELECT id, name, n FROM t WHERE id = ? FOR NO KEY UPDATE", 1)
    picked = yield rows("SELECT id FROM t WHERE name IN ? ORDER BY id", ("one", "three"))
    none = yield rows("SELECT id FROM t WHERE id IN ?", [])
    least = yield value("SELECT LEAST(MIN(n), ?) FROM t", 26)
    missing = yield row("SELECT id FROM t WHERE id = ?", 99)
    return {"raised": raised, "first": tuple(first), "picked": [r[0] for r in picked],
            "none": none, "least": least, "missing": missing}  # fmt: skip


@pytest.mark.anyio
async def test_one_script_gets_the_same_answers_from_both_databases(database: Database) -> None:
    got = await database.transact(_fill_and_ask)
    assert got == {"raised": 2, "first": (1, "one", 25), "picked": [1, 3], "none": [],
                   "least": 25, "missing": None}  # fmt: skip
    assert await database.read(_names()) == ["one", "three", "two"]


def _names() -> Script[list[str]]:
    found = yield rows("SELECT name FROM t ORDER BY name")
    return [r[0] for r in found]


def _fails_halfway() -> Script[None]:
    yield run("INSERT INTO t (id, name, n) VALUES (?, ?, ?)", 7, "seven", 7)
    raise RuntimeError("a rule refused the change")


@pytest.mark.anyio
async def test_a_script_that_fails_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(RuntimeError):
        await database.transact(_fails_halfway)
    assert await database.read(_names()) == []


def _null_safe_equality() -> Script[list[int]]:
    found = yield rows(
        "SELECT id FROM t WHERE (CASE WHEN id = 2 THEN NULL ELSE name END)"
        " IS NOT DISTINCT FROM ? ORDER BY id", None,
    )  # fmt: skip
    return [r[0] for r in found]


@pytest.mark.anyio
async def test_null_equals_null_where_asked(database: Database) -> None:
    await database.transact(_fill_and_ask)
    assert await database.read(_null_safe_equality()) == [2]
    assert lite.statement("SELECT 1 WHERE a IS NOT DISTINCT FROM ?", (None,))[0] == (
        "SELECT 1 WHERE a IS ?"
    )


def _keep_names(names: tuple[str, ...]) -> Script[tuple[str, ...]]:
    yield run("INSERT INTO t (id, name, n) VALUES (?, ?, ?)", 1, TextArray(names), 0)
    return text_array((yield value("SELECT name FROM t WHERE id = ?", 1)))


@pytest.mark.anyio
async def test_strings_kept_in_one_column(database: Database) -> None:
    if isinstance(database, PostgresDatabase):  # the column is text[] there
        alter = "ALTER TABLE t ALTER name TYPE text[] USING ARRAY[name]"
        await database.transact(partial(just_run, alter))
    assert await database.transact(partial(_keep_names, ("a", 'b"'))) == ("a", 'b"')
    assert lite.statement("SELECT ?", (TextArray(("x",)),))[1] == ['["x"]']
    assert pg.args_of((TextArray(("x",)),)) == [["x"]]


def just_run(text: str) -> Script[None]:
    yield run(text)


def test_sqlite_words() -> None:
    text, args = lite.statement("SELECT GREATEST(a, ?) FROM t WHERE id IN ? AND x = ? "
                                "FOR NO KEY UPDATE", (1, [2, 3], 4))  # fmt: skip
    assert text == "SELECT MAX(a, ?) FROM t WHERE id IN (?, ?) AND x = ?"
    assert list(args) == [1, 2, 3, 4]


def test_postgres_words() -> None:
    assert pg.text_of("SELECT a FROM t WHERE id IN ? AND x = ? FOR UPDATE") == (
        "SELECT a FROM t WHERE id = ANY($1) AND x = $2 FOR UPDATE"
    )
    assert pg.args_of((1, ("a", "b"))) == [1, ["a", "b"]]


def _insert_clashing() -> Script[list[int]]:
    yield Insert("t", ("id", "name", "n"), [(1, "one", 1), (2, "two", 2)])
    yield Insert("t", ("id", "name", "n"), [(1, "uno", 5), (3, "three", 3)],
                 on_conflict="(id) DO UPDATE SET n = t.n + excluded.n")  # fmt: skip
    yield Insert("t", ("id", "name", "n"), [(2, "dos", 9)], on_conflict="(id) DO NOTHING")
    found = yield rows("SELECT n FROM t ORDER BY id")
    return [r[0] for r in found]


@pytest.mark.anyio
async def test_a_bulk_insert_says_what_a_clash_means(database: Database) -> None:
    assert await database.transact(_insert_clashing) == [6, 2, 3]


@pytest.mark.anyio
async def test_read_all_runs_scripts_side_by_side_and_answers_in_order(
    database: Database,
) -> None:
    def fill() -> Script[None]:
        yield Insert("t", ("id", "name", "n"), [(i, f"n{i}", i * 10) for i in range(1, 6)])

    await database.transact(fill)

    def ask(i: int) -> Script[tuple[int, str]]:
        found = yield row("SELECT n, name FROM t WHERE id = ?", i)
        again = yield value("SELECT COUNT(*) FROM t WHERE n <= ?", found[0])
        return int(again), str(found[1])

    assert await database.read_all([ask(i) for i in (5, 1, 3, 2, 4)]) == [
        (5, "n5"), (1, "n1"), (3, "n3"), (2, "n2"), (4, "n4")
    ]  # fmt: skip
    assert await database.read_all([]) == []


@pytest.mark.anyio
async def test_in_lanes_runs_at_most_one_script_per_lane_at_once() -> None:
    import asyncio

    from tracker.storage.script import in_lanes

    running, most = 0, 0

    async def lane(script: Script[Any]) -> Any:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return next(script).text  # the script's first statement stands for its answer

    scripts = [iter([run(f"SELECT {i}")]) for i in range(7)]
    found = await in_lanes(scripts, [lane, lane, lane])  # type: ignore[arg-type]
    assert found == [f"SELECT {i}" for i in range(7)]
    assert most == 3
