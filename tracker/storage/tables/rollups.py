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

* a catch-up job (``catch_up``, every second in the collector, and before the dashboard
  reads) tallies the page views committed past that mark in storage order, many
  thousands per transaction, so ingest's own commits write nothing more. It asks which
  of their sessions already had a page view and each visitor's latest hour; a visitor
  with a tallied page view later than a new one (out of time order) is tallied whole
  instead. On PostgreSQL, where several collectors commit out of id order, the mark
  moves only to a ``horizon`` below which every transaction that wrote events has ended;
* a delete by visitor (erasure, ``forget``, idle visitors) tallies those visitors'
  covered page views before and after it and applies the difference (``snapshot`` /
  ``settle``); a page view deleted before the job reached it is simply never counted;
* retention by time (``expire``) runs before the purge: the rows of wholly expired hours
  go, and visitors with page views on both sides of the cutoff are re-tallied as the
  purge will leave them.

Each of these takes the ``rollup_state`` row first (``FOR UPDATE``), so on PostgreSQL
they run one at a time; SQLite's single writer does that already.

``rollup_state.watermark`` says whether the counts cover every visitor: a rebuild
(``rebuild_step``, after migration 0010 on a database with events) walks visitors in id
order and moves it; until it is done the job adds only for visitors at or below it, and
readers fall back to the raw events. With ``ASHIATO_ROLLUPS`` off no job runs and the
mark stays where it is: turned on again, the job catches up from there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import partial

from tracker.storage.script import Insert, Script, TableLock, row, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.tally import (
    DAILY,
    HOUR_MS,
    Session,
    Tally,
    View,
    VisitorHour,
    tally,
)

VIEW_COLUMNS = (
    "id, site_id, vid, sid, at, url, referrer, utm_source, utm_medium, utm_campaign,"
    " device, browser, os"
)
VIEWS_PER_QUERY = 500
ALL = "\U0010ffff"
"""A watermark above every visitor id: the roll-ups cover everyone."""


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
        yield Insert("rollup_visitors", ("site_id", "hour", "vid", "prev_hour"),
                     [(*k, v) for k, v in sorted(delta.visitors.items())],
                     on_conflict="(site_id, hour, vid) DO UPDATE SET prev_hour ="
                     " excluded.prev_hour")  # fmt: skip
    for site, hour, vid in sorted(set(gone)):
        yield run(
            "DELETE FROM rollup_visitors WHERE site_id = ? AND hour = ? AND vid = ?",
            site, hour, vid,
        )  # fmt: skip


COUNT_COLUMNS = ("site_id", "dim", "hour", "value", "pageviews", "sessions")
ADD_COUNTS = (
    "(site_id, dim, hour, value) DO UPDATE SET"
    " pageviews = rollup_counts.pageviews + excluded.pageviews,"
    " sessions = rollup_counts.sessions + excluded.sessions"
)


# -- how far they cover -----------------------------------------------------------------
def coverage() -> Script[tuple[str, int]]:
    """(watermark, tallied), the ``rollup_state`` row taken for this transaction: visitors
    at or below the watermark ('' none, ``ALL`` everyone) are counted, up to the event id
    ``tallied``."""
    found = yield row("SELECT watermark, tallied FROM rollup_state WHERE id = 1 FOR UPDATE")
    return (ALL if found[0] is None else str(found[0])), int(found[1])


def horizon() -> Script[tuple[int, int]]:
    """The highest event id below which no transaction writing events is still open (on
    PostgreSQL, where ids are taken before commit, this waits for those in progress: a
    short lock, its own transaction; on SQLite every committed id already is), and the
    mark now."""
    yield TableLock("events")
    until = int((yield value("SELECT MAX(id) FROM events")) or 0)
    return until, int((yield value("SELECT tallied FROM rollup_state WHERE id = 1")))


# -- as events are committed -----------------------------------------------------------
def catch_up(until: int, limit: int) -> Script[int]:
    """Tally the next page views past the mark, up to event id ``until`` (a ``horizon``)
    and about ``limit`` of them; return how many are left to the horizon (0: done)."""
    mark, tallied = yield from coverage()
    if tallied >= until:
        return 0
    found = yield rows(
        f"SELECT {VIEW_COLUMNS} FROM events WHERE id > ? AND id <= ? AND type = ?"
        " ORDER BY id LIMIT ?",
        tallied, until, "pageview", limit,
    )  # fmt: skip
    reached = int(found[-1][0]) if len(found) == limit else until
    views = found if mark == ALL else [v for v in found if v[2] <= mark]
    if views:
        known, last = yield from existing({v[2] for v in views}, tallied)
        late = {v[2] for v in views if v[4] // HOUR_MS < last.get((v[1], v[2]), -1)}
        if late:
            before = tally((yield from views_of(late, mark, tallied)))
            after = tally((yield from views_of(late, mark, reached)))
            yield from apply(after.minus(before), after.gone(before))
            views = [v for v in views if v[2] not in late]
        yield from apply(tally(views, known, last))
    yield run("UPDATE rollup_state SET tallied = ? WHERE id = 1", reached)
    return until - reached


def existing(
    vids: Iterable[str], upto: int
) -> Script[tuple[set[Session], dict[tuple[int, str], int]]]:
    """Sessions with a counted page view already, and each visitor's latest hour with one."""
    ordered, known, last = sorted(vids), set[Session](), dict[tuple[int, str], int]()
    for start in range(0, len(ordered), VIEWS_PER_QUERY):
        found = yield rows(
            "SELECT site_id, vid, sid, MAX(at) FROM events WHERE vid IN ? AND type = ?"
            " AND id <= ? GROUP BY site_id, vid, sid",
            ordered[start : start + VIEWS_PER_QUERY], "pageview", upto,
        )  # fmt: skip
        for site, vid, sid, at in found:
            known.add((int(site), vid, sid or ""))
            key = (int(site), vid)
            last[key] = max(last.get(key, -1), int(at) // HOUR_MS)
    return known, last


# -- as events are deleted -------------------------------------------------------------
def views_of(vids: Iterable[str], mark: str, upto: int) -> Script[list[View]]:
    """The page views of these visitors that the roll-ups cover (visitors at or below
    ``mark``, ids up to ``upto``), in storage order."""
    ordered, found = sorted(v for v in set(vids) if v <= mark), list[View]()
    for start in range(0, len(ordered), VIEWS_PER_QUERY):
        found += yield rows(
            f"SELECT {VIEW_COLUMNS} FROM events WHERE vid IN ? AND type = ? AND id <= ?",
            ordered[start : start + VIEWS_PER_QUERY], "pageview", upto,
        )  # fmt: skip
    found.sort(key=lambda v: v[0])
    return found


def snapshot(vids: Iterable[str]) -> Script[Tally]:
    """What these visitors count for now: call before deleting some of their events."""
    return tally((yield from views_of(vids, *(yield from coverage()))))


def settle(vids: Iterable[str], before: Tally) -> Script[None]:
    """After the delete: apply the difference to what they count for now."""
    after = tally((yield from views_of(vids, *(yield from coverage()))))
    yield from apply(after.minus(before), after.gone(before))


def expire(site_id: int, before: int) -> Script[None]:
    """Before retention deletes the site's events older than ``before`` (a whole hour):
    the roll-ups as the purge will leave them."""
    mark, tallied = yield from coverage()
    hour = before // HOUR_MS
    spanning = yield rows(
        "SELECT DISTINCT e.vid FROM events e WHERE e.site_id = ? AND e.at < ? AND e.type = ?"
        " AND EXISTS (SELECT 1 FROM events f WHERE f.vid = e.vid AND f.at >= ?"
        " AND f.site_id = e.site_id AND f.type = ?)",
        site_id, before, "pageview", before, "pageview",
    )  # fmt: skip
    views = [v for v in (yield from views_of((r[0] for r in spanning), mark, tallied))
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
    yield from coverage()
    yield run("DELETE FROM rollup_counts")
    yield run("DELETE FROM rollup_visitors")
    yield run("UPDATE rollup_state SET watermark = '' WHERE id = 1")


def rebuild_step(limit: int) -> Script[bool]:
    """Tally the next visitors past the watermark (about ``limit`` page views, those the
    catch-up has reached); True when every visitor is in."""
    mark, tallied = yield from coverage()
    if mark == ALL:
        return True
    found = yield rows(
        "SELECT vid FROM events WHERE vid > ? AND type = ? ORDER BY vid LIMIT ?",
        mark, "pageview", limit,
    )  # fmt: skip
    vids = sorted({r[0] for r in found})
    done = len(found) < limit
    if not done and len(vids) > 1:
        vids = vids[:-1]  # the last one may have more page views past the limit
    top = ALL if done else vids[-1]
    yield run("UPDATE rollup_state SET watermark = ? WHERE id = 1", top)
    if vids:
        yield from apply(tally((yield from views_of(vids, top, tallied))))
    if done:
        yield run("UPDATE rollup_state SET watermark = NULL WHERE id = 1")
    return done


CATCH_UP_LIMIT = 2_000
"""Page views per catch-up transaction: on SQLite ingest's batches wait behind each one."""
READ_LAG = 50_000
"""Readers catch up first when this few events or fewer are untallied; with more (after
the roll-ups were off a long time) they read raw events and the job catches up."""


class RollupTables(Tables):
    """Roll-up maintenance outside ingest: mixed into both stores."""

    rollups_on = True
    """Whether the catch-up job runs (``ASHIATO_ROLLUPS``)."""

    async def catch_up_rollups(self, *, limit: int = CATCH_UP_LIMIT) -> int:
        """Tally what was committed up to now, a transaction per ``limit`` page views;
        return how many events (of every type) the mark moved over."""
        until, start = await self.transact(horizon)
        while await self.transact(partial(catch_up, until, limit)):
            pass
        return max(0, until - start)

    async def rollups_ready(self) -> bool:
        """The roll-ups cover every visitor and are caught up (close enough to catch up
        now): the dashboard reads them."""
        if not self.rollups_on:
            return False
        mark, tallied = await self.read(_coverage_now())
        if mark != ALL or await self.read(_last_id()) - tallied > READ_LAG:
            return False
        await self.catch_up_rollups()
        return True

    async def expire_rollups(self, site_id: int, before: int) -> None:
        await self.transact(partial(expire, site_id, before))

    async def rebuild_rollups(self, *, limit: int = 20_000) -> None:
        """Count every event again (a long job: one short transaction per step)."""
        await self.catch_up_rollups()
        await self.transact(start_rebuild)
        while not await self.transact(partial(rebuild_step, limit)):
            pass


def _coverage_now() -> Script[tuple[str, int]]:
    found = yield row("SELECT watermark, tallied FROM rollup_state WHERE id = 1")
    return (ALL if found[0] is None else str(found[0])), int(found[1])


def _last_id() -> Script[int]:
    return int((yield value("SELECT MAX(id) FROM events")) or 0)
