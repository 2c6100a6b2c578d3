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

Maintenance, each in the transaction that changes the events:

* a write batch adds what its page views count for (``record``), after asking which of
  their sessions already had a page view and each visitor's latest hour; a visitor with
  a page view later than the batch's (out of time order) is tallied whole instead;
* a delete by visitor (erasure, ``forget``, idle visitors) tallies those visitors' page
  views before and after it and applies the difference (``snapshot`` / ``settle``);
* retention by time (``expire``) runs before the purge: the rows of wholly expired hours
  go, and visitors with page views on both sides of the cutoff are re-tallied as the
  purge will leave them.

``rollup_state`` says whether the counts cover every visitor: a rebuild (``rebuild_step``,
after migration 0010 on a database with events, or after ingest ran with roll-ups off)
walks visitors in id order and moves a watermark; until it is done a write adds only for
visitors at or below it, and readers fall back to the raw events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import partial

from tracker.storage.records import Event
from tracker.storage.script import Insert, Script, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.tally import (
    DAILY,
    HOUR_MS,
    Session,
    Tally,
    View,
    VisitorHour,
    tally,
    view_of,
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


# -- as events are written -------------------------------------------------------------
def watermark() -> Script[str]:
    """Visitors at or below this id are in the roll-ups ('' none, ``ALL`` everyone)."""
    found = yield value("SELECT watermark FROM rollup_state WHERE id = 1")
    return ALL if found is None else str(found)


def record(events: Sequence[Event], enabled: bool) -> Script[Pending]:
    """Before ``events`` are inserted: add what their page views count for (or, with
    roll-ups off, mark the roll-ups as needing a rebuild). A visitor with a page view
    later than one of these (arrived out of time order) is tallied whole instead: pass
    the answer to ``settle_pending`` after the insert."""
    if not enabled:
        yield run("UPDATE rollup_state SET watermark = '' WHERE id = 1 AND watermark IS NULL")
        return None
    mark = yield from watermark()
    views = [view_of(e) for e in events if e.type == "pageview" and e.vid <= mark]
    if not views:
        return None
    known, last = yield from existing({v[2] for v in views})
    late = {v[2] for v in views if v[4] // HOUR_MS < last.get((v[1], v[2]), -1)}
    if late:
        views = [v for v in views if v[2] not in late]
    yield from apply(tally(views, known, last))
    return (late, (yield from snapshot(late))) if late else None


Pending = tuple[set[str], "Tally"] | None
"""Visitors to tally again after an insert, and what they counted for before it."""


def settle_pending(pending: Pending) -> Script[None]:
    if pending is not None:
        yield from settle(*pending)


def existing(vids: Iterable[str]) -> Script[tuple[set[Session], dict[tuple[int, str], int]]]:
    """Sessions with a page view already, and each visitor's latest hour with one."""
    ordered, known, last = sorted(vids), set[Session](), dict[tuple[int, str], int]()
    for start in range(0, len(ordered), VIEWS_PER_QUERY):
        found = yield rows(
            "SELECT site_id, vid, sid, MAX(at) FROM events WHERE vid IN ? AND type = ?"
            " GROUP BY site_id, vid, sid",
            ordered[start : start + VIEWS_PER_QUERY], "pageview",
        )  # fmt: skip
        for site, vid, sid, at in found:
            known.add((int(site), vid, sid or ""))
            key = (int(site), vid)
            last[key] = max(last.get(key, -1), int(at) // HOUR_MS)
    return known, last


# -- as events are deleted -------------------------------------------------------------
def views_of(vids: Iterable[str]) -> Script[list[View]]:
    """The page views of these visitors (those the roll-ups cover), in storage order."""
    mark = yield from watermark()
    ordered, found = sorted(v for v in set(vids) if v <= mark), list[View]()
    for start in range(0, len(ordered), VIEWS_PER_QUERY):
        found += yield rows(
            f"SELECT {VIEW_COLUMNS} FROM events WHERE vid IN ? AND type = ?",
            ordered[start : start + VIEWS_PER_QUERY], "pageview",
        )  # fmt: skip
    found.sort(key=lambda v: v[0])
    return found


def snapshot(vids: Iterable[str]) -> Script[Tally]:
    """What these visitors count for now: call before deleting some of their events."""
    return tally((yield from views_of(vids)))


def settle(vids: Iterable[str], before: Tally) -> Script[None]:
    """After the delete: apply the difference to what they count for now."""
    after = tally((yield from views_of(vids)))
    yield from apply(after.minus(before), after.gone(before))


def expire(site_id: int, before: int) -> Script[None]:
    """Before retention deletes the site's events older than ``before`` (a whole hour):
    the roll-ups as the purge will leave them."""
    hour = before // HOUR_MS
    spanning = yield rows(
        "SELECT DISTINCT e.vid FROM events e WHERE e.site_id = ? AND e.at < ? AND e.type = ?"
        " AND EXISTS (SELECT 1 FROM events f WHERE f.vid = e.vid AND f.at >= ?"
        " AND f.site_id = e.site_id AND f.type = ?)",
        site_id, before, "pageview", before, "pageview",
    )  # fmt: skip
    views = [v for v in (yield from views_of(r[0] for r in spanning)) if v[1] == site_id]
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
    yield run("DELETE FROM rollup_counts")
    yield run("DELETE FROM rollup_visitors")
    yield run("UPDATE rollup_state SET watermark = '' WHERE id = 1")


def rebuild_step(limit: int) -> Script[bool]:
    """Tally the next visitors past the watermark (about ``limit`` page views); True
    when every visitor is in."""
    mark = yield from watermark()
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
        yield from apply(tally((yield from views_of(vids))))
    if done:
        yield run("UPDATE rollup_state SET watermark = NULL WHERE id = 1")
    return done


class RollupTables(Tables):
    """Roll-up maintenance outside ingest: mixed into both stores."""

    async def rollups_ready(self) -> bool:
        return await self.read(_ready())

    async def expire_rollups(self, site_id: int, before: int) -> None:
        await self.transact(partial(expire, site_id, before))

    async def rebuild_rollups(self, *, limit: int = 20_000) -> None:
        """Count every event again (a long job: one short transaction per step)."""
        await self.transact(start_rebuild)
        while not await self.transact(partial(rebuild_step, limit)):
            pass


def _ready() -> Script[bool]:
    return (yield from watermark()) == ALL
