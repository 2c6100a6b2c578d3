"""The roll-ups' catch-up (``rollups.py`` says what they count): counting the page views
committed past the mark, a step at a time, and the store methods that run it, rebuild
it and tell readers whether to use the roll-ups."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from tracker.errors import StorageError
from tracker.storage.script import Script, TableLock, row, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.rollups import (
    NEW_PREV,
    VISITOR_COLUMNS,
    apply,
    coverage,
    expire,
    views_of,
)
from tracker.storage.tables.tally import HOUR_MS, Tally, VisitorRow, spread, tally


def horizon() -> Script[tuple[int, int]]:
    """The highest event id below which no transaction writing events is still open (on
    PostgreSQL, where ids are taken before commit, this waits for those in progress: a
    short lock, its own transaction; on SQLite every committed id already is), and the
    mark now."""
    yield TableLock("events")
    until = int((yield value("SELECT MAX(id) FROM events")) or 0)
    return until, int((yield value("SELECT tallied FROM rollup_state WHERE id = 1")))


# -- as events are committed -----------------------------------------------------------
@dataclass(slots=True)
class Step:
    """One catch-up step, counted from the events without the write lock (``plan``) and
    applied with it (``commit``) unless a delete or another step came between."""

    state: tuple[int, int]
    """``rollup_state`` as read: (tallied, deletes)."""
    reached: int
    delta: Tally
    gone: set[VisitorRow]
    views: tuple[int, str, tuple[Any, ...]]
    """The mark, and the page views whose visitor-hours ``commit`` adds: those past the
    mark of visitors in time order (a ``WHERE`` clause and its arguments)."""


def plan(until: int, limit: int) -> Script[Step | None]:
    """Count the page views among the next ``limit`` event ids past the mark, up to
    ``until`` (a ``horizon``); None when there are none left.

    The database does the counting: grouped statements here, and one statement in
    ``commit`` for the visitor-hours (``visitor_hours``), so no row per page view or per
    visitor comes into Python. Visitors with a counted page view in a later hour than a
    new one (out of time order) are the exception: tallied whole in Python, before and
    after. Reads only, so on SQLite it runs beside ingest's writes, not between them.
    Each probe of a visitor's earlier page views goes by ``events_by_visitor``:
    ``site_id + 0`` keeps a planner without statistics (a fresh PostgreSQL partition) off
    the site index, which would read every page view of the site per probe.
    """
    found = yield row("SELECT tallied, deletes FROM rollup_state WHERE id = 1")
    state = int(found[0]), int(found[1])
    tallied = state[0]
    if tallied >= until:
        return None
    reached = min(until, tallied + limit)
    where, args = NEW_VIEWS, tuple[Any, ...]((tallied, reached))
    # Visitors out of time order: a new page view in an hour before a counted one.
    found = yield rows(
        f"SELECT DISTINCT vid FROM events e WHERE {where} AND EXISTS (SELECT 1 FROM events f"
        f" WHERE f.vid = e.vid AND f.at >= (e.at / {HOUR_MS} + 1) * {HOUR_MS} AND f.id <= ?"
        " AND f.site_id + 0 = e.site_id AND f.type = 'pageview')",
        *args, tallied,
    )  # fmt: skip
    late = sorted(r[0] for r in found)
    delta, gone = Tally(), set[VisitorRow]()
    if late:
        before = tally((yield from views_of(late, tallied)))
        after = tally((yield from views_of(late, reached)))
        delta, gone = after.minus(before), after.gone(before)
        where, args = f"{where} AND NOT (vid IN ?)", (*args, late)
    pages = yield rows(
        f"SELECT site_id, at / {HOUR_MS}, url, COUNT(*) FROM events WHERE {where}"
        " GROUP BY 1, 2, 3",
        *args,
    )  # fmt: skip
    # A session's first page view in storage order, unless one was counted before.
    landings = yield rows(
        f"SELECT site_id, at / {HOUR_MS}, url, referrer, utm_source, utm_medium, utm_campaign,"
        " device, browser, os, COUNT(*) FROM events n WHERE id IN (SELECT MIN(id) FROM events"
        f" WHERE {where} GROUP BY site_id, vid, COALESCE(sid, '')) AND NOT EXISTS (SELECT 1"
        " FROM events f WHERE f.vid = n.vid AND f.site_id + 0 = n.site_id AND f.type = 'pageview'"
        " AND COALESCE(f.sid, '') = COALESCE(n.sid, '') AND f.id <= ?)"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
        *args, tallied,
    )  # fmt: skip
    views, sessions = spread({tuple(r[:3]): r[3] for r in pages},
                             {tuple(r[:10]): r[10] for r in landings})  # fmt: skip
    delta.views.update(views)
    delta.sessions.update(sessions)
    return Step(state, reached, delta, gone, (tallied, where, args))


def commit(step: Step) -> Script[bool]:
    """Apply a planned step; False (nothing done) if the roll-ups moved since."""
    found = yield row("SELECT tallied, deletes FROM rollup_state WHERE id = 1 FOR UPDATE")
    if (int(found[0]), int(found[1])) != step.state:
        return False
    yield from apply(step.delta, step.gone)
    yield from visitor_hours(*step.views)
    yield run("UPDATE rollup_state SET tallied = ? WHERE id = 1", step.reached)
    return True


def plan_and_commit(until: int, limit: int) -> Script[bool]:
    """Both in one transaction (when steps planned apart kept being overtaken): True
    while there is more to count."""
    step = yield from plan(until, limit)
    if step is None:
        return False
    yield from commit(step)
    return True


def visitor_hours(tallied: int, where: str, args: tuple[Any, ...]) -> Script[None]:
    """Add each new visitor-hour among the page views ``where`` selects, with the
    visitor's previous hour: the one before it among the new, or the latest counted
    (none is later than the visitor's first new hour: ``where`` leaves out visitors out of
    time order, so the probe stops at that hour's end instead of walking the visitor's
    later page views, which a rebuild from the first event has many of).
    One statement: no row per visitor-hour goes through Python (it would hold the GIL
    that ingest's event loop needs), and the database does it without a round trip."""
    yield run(
        f"INSERT INTO rollup_visitors ({', '.join(VISITOR_COLUMNS)})"
        " SELECT site_id, hour, first_id, prev FROM (SELECT site_id, hour, first_id,"
        " COALESCE(lagged, (SELECT MAX(f.at) FROM events f WHERE f.vid = g.vid"
        " AND f.site_id + 0 = g.site_id AND f.type = 'pageview' AND f.id <= ?"
        f" AND f.at < (g.hour + 1) * {HOUR_MS}) / {HOUR_MS}, -1) AS prev"
        f" FROM (SELECT site_id, vid, at / {HOUR_MS} AS hour, MIN(id) AS first_id,"
        f" LAG(at / {HOUR_MS}) OVER (PARTITION BY site_id, vid ORDER BY at / {HOUR_MS}) AS lagged"
        f" FROM events WHERE {where} GROUP BY site_id, vid, at / {HOUR_MS}) AS g) AS v"
        f" WHERE prev <> hour ON CONFLICT {NEW_PREV}",
        tallied, *args,
    )  # fmt: skip


NEW_VIEWS = "id > ? AND id <= ? AND type = 'pageview'"
"""Page views past the mark (ids in ``(tallied, reached]``)."""


# -- rebuilding ------------------------------------------------------------------------
def start_rebuild() -> Script[None]:
    """Empty the roll-ups and move the mark back to the first event: the catch-up counts
    everything again (a step planned before this one is not applied)."""
    yield from coverage()
    yield run("DELETE FROM rollup_counts")
    yield run("DELETE FROM rollup_visitors")
    yield run("UPDATE rollup_state SET tallied = 0, deletes = deletes + 1 WHERE id = 1")


CATCH_UP_LIMIT = 2_000
"""Event ids per catch-up step: its reads run beside ingest, its writes (a row per new
visitor-hour, by one statement) between ingest's transactions."""
READ_LAG = 50_000
"""Readers catch up first when this few events or fewer are untallied; with more (after
the roll-ups were off a long time) they read raw events and the job catches up."""


class RollupTables(Tables):
    """Roll-up maintenance outside ingest: mixed into both stores."""

    rollups_on = True
    """Whether the catch-up job runs (``ASHIATO_ROLLUPS``)."""

    async def catch_up_rollups(self, *, limit: int = CATCH_UP_LIMIT) -> int:
        """Count what was committed up to now, ``limit`` event ids a step; return how
        many ids the mark moved over."""
        until, start = await self.transact(horizon)
        overtaken = 0
        while overtaken < 3:
            step = await self.read_behind(plan(until, limit))
            if step is None:
                return max(0, until - start)
            if not await self.transact(partial(commit, step)):
                overtaken += 1  # a delete came between: count it again
        while await self.transact(partial(plan_and_commit, until, limit)):
            pass
        return max(0, until - start)

    async def rollups_ready(self) -> bool:
        """The roll-ups cover every visitor and are caught up (close enough to catch up
        now): the dashboard reads them."""
        if not self.rollups_on:
            return False
        tallied = await self.read(_coverage_now())
        if await self.read(_last_id()) - tallied > READ_LAG:
            return False
        try:
            await self.catch_up_rollups()
        except StorageError:  # a long transaction writing events: read them raw instead
            return False
        return True

    async def expire_rollups(self, site_id: int, before: int) -> None:
        await self.transact(partial(expire, site_id, before))

    async def rebuild_rollups(self, *, limit: int = 50_000) -> None:
        """Count every event again (a long job: a short write per ``limit`` event ids)."""
        await self.transact(start_rebuild)
        await self.catch_up_rollups(limit=limit)


def _coverage_now() -> Script[int]:
    return int((yield value("SELECT tallied FROM rollup_state WHERE id = 1")))


def _last_id() -> Script[int]:
    return int((yield value("SELECT MAX(id) FROM events")) or 0)
