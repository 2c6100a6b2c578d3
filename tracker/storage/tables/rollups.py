"""Roll-ups: hourly counts of page views and sessions, kept exact with the raw events.

What a page view counts for (``tally``), decided once here and used both as events are
committed and when some are deleted:

* ``rollup_counts`` (site, dimension, UTC hour, value): page views per page (``page``)
  and in all (dimension ``''``); sessions in all and per entry page, referrer host, UTM
  source / medium / campaign, device, browser and OS. A session is a (site, visitor,
  sid) with page views; it counts once, in the hour of its first page view in storage
  order (``events.id``), with that page view's attributes. Pages and entry pages are
  also counted per UTC day (``DAILY``), so a month is read from days, not hours.
* ``rollup_visitors`` (site, UTC hour, visitor, previous hour): each hour a visitor
  viewed a page in, with the visitor's previous such hour (-1 for none). The distinct
  visitors of any span of hours are its rows whose previous hour is before the span, so
  the days of any whole-hour time zone are counted exactly, without a set of ids.

They cover the page views up to ``rollup_state.tallied`` (an ``events.id``), exactly:

* a catch-up job (every second in the collector, and before the dashboard reads)
  counts the page views committed past that mark, in storage order, a step of 2,000
  event ids at a time. ``plan`` has the database count them with grouped reads off the
  write path (no row per page view comes into Python): pages per hour and URL, each new
  session's landing, each new visitor-hour with the visitor's previous one; a visitor
  with a counted page view in a later hour than a new one (out of time order) is
  tallied whole in Python instead. ``commit`` applies the step under the write lock,
  unless a delete (``rollup_state.deletes``) or another step came between. On
  PostgreSQL, where several collectors commit out of id order, the mark moves only to
  a ``horizon`` below which every transaction that wrote events has ended;
* a delete by visitor (erasure, ``forget``, idle visitors) tallies those visitors'
  covered page views before and after it and applies the difference (``snapshot`` /
  ``settle``); a page view deleted before the job reached it is simply never counted.
  Every delete of events also brings the mark down to the highest id left (``deleted``):
  SQLite gives a deleted highest id to the next insert;
* retention by time (``expire``) runs before the purge: the rows of wholly expired hours
  go, and visitors with page views on both sides of the cutoff are re-tallied as the
  purge will leave them.

Each of these writes takes the ``rollup_state`` row (``FOR UPDATE``, or by updating it),
so on PostgreSQL they run one at a time; SQLite's single writer does that already.

A rebuild (``ashiato reports rebuild``) empties the roll-ups and moves the mark back to
0: the job counts everything again, a step at a time, while ingest goes on; readers use
the raw events while the job is far behind (``READ_LAG``). With ``ASHIATO_ROLLUPS`` off
no job runs and the mark stays where it is: turned on again, the job catches up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from tracker.errors import StorageError
from tracker.storage.script import Insert, Script, TableLock, row, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.tally import (
    DAILY,
    HOUR_MS,
    Tally,
    View,
    VisitorHour,
    spread,
    tally,
)

VIEW_COLUMNS = (
    "id, site_id, vid, sid, at, url, referrer, utm_source, utm_medium, utm_campaign,"
    " device, browser, os"
)
VIEWS_PER_QUERY = 500


def apply(delta: Tally, gone: Iterable[VisitorHour] = ()) -> Script[None]:
    """Add ``delta``'s counts (negative ones subtract); add its visitor-hours and remove
    ``gone``."""
    items = delta.rows()
    if items:
        yield Insert("rollup_counts", COUNT_COLUMNS, [(*k, v, s) for k, v, s in items],
                     on_conflict=ADD_COUNTS)  # fmt: skip
    for site, dim, hour, val in [k for k, v, s in items if v < 0 or s < 0]:
        yield run(
            "DELETE FROM rollup_counts WHERE site_id = ? AND dim = ? AND hour = ?"
            " AND value = ? AND pageviews = 0 AND sessions = 0",
            site, dim, hour, val,
        )  # fmt: skip
    if delta.visitors:
        visitors = [(*k, v) for k, v in delta.visitors.items()]
        yield Insert("rollup_visitors", VISITOR_COLUMNS, visitors, on_conflict=NEW_PREV)
    for site, hour, vid in sorted(set(gone)):
        yield run(
            "DELETE FROM rollup_visitors WHERE site_id = ? AND hour = ? AND vid = ?",
            site, hour, vid,
        )  # fmt: skip


COUNT_COLUMNS = ("site_id", "dim", "hour", "value", "pageviews", "sessions")
VISITOR_COLUMNS = ("site_id", "hour", "vid", "prev_hour")
NEW_PREV = "(site_id, hour, vid) DO UPDATE SET prev_hour = excluded.prev_hour"
ADD_COUNTS = (
    "(site_id, dim, hour, value) DO UPDATE SET"
    " pageviews = rollup_counts.pageviews + excluded.pageviews,"
    " sessions = rollup_counts.sessions + excluded.sessions"
)


# -- how far they cover -----------------------------------------------------------------
def coverage() -> Script[int]:
    """``tallied``, the ``rollup_state`` row taken for this transaction: page views up to
    this event id are counted."""
    return int((yield value("SELECT tallied FROM rollup_state WHERE id = 1 FOR UPDATE")))


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
    gone: set[VisitorHour]
    visitors: list[tuple[int, int, str, int]]
    """New visitor-hours: (site, hour, vid, previous hour)."""


def plan(until: int, limit: int) -> Script[Step | None]:
    """Count the page views among the next ``limit`` event ids past the mark, up to
    ``until`` (a ``horizon``); None when there are none left.

    The database does the counting (grouped statements, a row per new visitor-hour and
    none per page view), except for visitors with a counted page view in a later hour
    than a new one (out of time order), who are tallied whole in Python before and after.
    Reads only, so on SQLite it runs beside ingest's writes, not between them. Each
    probe of a visitor's earlier page views goes by ``events_by_visitor``: ``site_id + 0``
    keeps a planner without statistics (a fresh PostgreSQL partition) off the site index,
    which would read every page view of the site per probe.
    """
    found = yield row("SELECT tallied, deletes FROM rollup_state WHERE id = 1")
    state = int(found[0]), int(found[1])
    tallied = state[0]
    if tallied >= until:
        return None
    reached = min(until, tallied + limit)
    where, args = NEW_VIEWS, tuple[Any, ...]((tallied, reached))
    # Each new visitor-hour, with the visitor's previous hour: the one before it among
    # the new, or the latest counted; later than it, the visitor is out of time order.
    hours = yield rows(
        f"SELECT site_id, hour, vid, prev FROM (SELECT site_id, vid, at / {HOUR_MS} AS hour,"
        f" COALESCE(LAG(at / {HOUR_MS}) OVER (PARTITION BY site_id, vid ORDER BY at / {HOUR_MS}),"
        " (SELECT MAX(f.at) FROM events f WHERE f.vid = e.vid AND f.site_id + 0 = e.site_id"
        f" AND f.type = 'pageview' AND f.id <= ?) / {HOUR_MS}, -1) AS prev FROM events e"
        f" WHERE {where} GROUP BY site_id, vid, at / {HOUR_MS}) AS v WHERE prev <> hour",
        tallied, *args,
    )  # fmt: skip
    late = sorted({vid for _, hour, vid, prev in hours if prev > hour})
    delta, gone = Tally(), set[VisitorHour]()
    if late:
        before = tally((yield from views_of(late, tallied)))
        after = tally((yield from views_of(late, reached)))
        delta, gone = after.minus(before), after.gone(before)
        where, args = f"{where} AND NOT (vid IN ?)", (*args, late)
        skip = set(late)
        hours = [h for h in hours if h[2] not in skip]
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
    visitors = [h if isinstance(h, tuple) else tuple(h) for h in hours]
    return Step(state, reached, delta, gone, visitors)


def commit(step: Step) -> Script[bool]:
    """Apply a planned step; False (nothing done) if the roll-ups moved since."""
    found = yield row("SELECT tallied, deletes FROM rollup_state WHERE id = 1 FOR UPDATE")
    if (int(found[0]), int(found[1])) != step.state:
        return False
    yield from apply(step.delta, step.gone)
    if step.visitors:
        yield Insert("rollup_visitors", VISITOR_COLUMNS, step.visitors, on_conflict=NEW_PREV)
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


NEW_VIEWS = "id > ? AND id <= ? AND type = 'pageview'"
"""Page views past the mark (ids in ``(tallied, reached]``)."""


# -- as events are deleted -------------------------------------------------------------
def views_of(vids: Iterable[str], upto: int) -> Script[list[View]]:
    """The page views of these visitors with ids up to ``upto``, in storage order."""
    ordered, found = sorted(set(vids)), list[View]()
    for start in range(0, len(ordered), VIEWS_PER_QUERY):
        found += yield rows(
            f"SELECT {VIEW_COLUMNS} FROM events WHERE vid IN ? AND type = ? AND id <= ?",
            ordered[start : start + VIEWS_PER_QUERY], "pageview", upto,
        )  # fmt: skip
    found.sort(key=lambda v: v[0])
    return found


def snapshot(vids: Iterable[str]) -> Script[Tally]:
    """What these visitors count for now: call before deleting some of their events."""
    return tally((yield from views_of(vids, (yield from coverage()))))


def settle(vids: Iterable[str], before: Tally) -> Script[None]:
    """After the delete: apply the difference to what they count for now."""
    after = tally((yield from views_of(vids, (yield from coverage()))))
    yield from apply(after.minus(before), after.gone(before))
    yield from deleted()


def deleted() -> Script[None]:
    """After any delete of events: a step planned before it is not applied (``commit``),
    and the mark comes down to the highest id left, as SQLite gives a deleted highest id
    to the next insert (no page view above it is left to be counted)."""
    yield run(
        "UPDATE rollup_state SET deletes = deletes + 1,"
        " tallied = LEAST(tallied, COALESCE((SELECT MAX(id) FROM events), 0)) WHERE id = 1"
    )


def expire(site_id: int, before: int) -> Script[None]:
    """Before retention deletes the site's events older than ``before`` (a whole hour):
    the roll-ups as the purge will leave them."""
    tallied = yield from coverage()
    hour = before // HOUR_MS
    spanning = yield rows(
        "SELECT DISTINCT e.vid FROM events e WHERE e.site_id = ? AND e.at < ? AND e.type = ?"
        " AND EXISTS (SELECT 1 FROM events f WHERE f.vid = e.vid AND f.at >= ?"
        " AND f.site_id + 0 = e.site_id AND f.type = ?)",
        site_id, before, "pageview", before, "pageview",
    )  # fmt: skip
    views = [v for v in (yield from views_of((r[0] for r in spanning), tallied))
             if v[1] == site_id]  # fmt: skip
    whole = tally(views)
    kept = tally(v for v in views if v[4] >= before)
    delta = kept.minus(whole)
    delta.views = Counter({k: n for k, n in delta.views.items() if k[2] >= hour})
    delta.sessions = Counter({k: n for k, n in delta.sessions.items() if k[2] >= hour})
    yield run("DELETE FROM rollup_counts WHERE site_id = ? AND hour < ?", site_id, hour)
    yield run("DELETE FROM rollup_visitors WHERE site_id = ? AND hour < ?", site_id, hour)
    yield from apply(delta, {v for v in kept.gone(whole) if v[1] >= hour})
    day = hour - hour % 24
    for dim in DAILY if day < hour else ():  # the cutoff's day: summed again from its hours
        yield run(
            "INSERT INTO rollup_counts (site_id, dim, hour, value, pageviews, sessions)"
            " SELECT site_id, ?, ?, value, SUM(pageviews), SUM(sessions) FROM rollup_counts"
            " WHERE site_id = ? AND dim = ? AND hour >= ? AND hour < ? GROUP BY site_id, value",
            f"{dim}/day", day, site_id, dim, hour, day + 24,
        )  # fmt: skip


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
visitor-hour) between ingest's transactions; 5,000 gave the same throughput in
``bench/console.py --ingest`` for 2 MiB more memory and a longer wait for ingest."""
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
