"""Roll-ups: hourly counts of page views and sessions, kept exact with the raw events.

What a page view counts for (``tally``), decided once here and used both as events are
committed and when some are deleted:

* ``rollup_counts`` (site, dimension, UTC hour, value): page views per page (``page``)
  and in all (dimension ``''``); sessions in all and per entry page, referrer host, UTM
  source / medium / campaign, device, browser and OS. A session is a (site, visitor,
  sid) with page views; it counts once, in the hour of its first page view in storage
  order (``events.id``), with that page view's attributes. Pages and entry pages are
  also counted per UTC day (``DAILY``), so a month is read from days, not hours.
* ``rollup_visitors`` (site, UTC hour, first page view, previous hour): each hour a
  visitor viewed a page in, with the visitor's previous such hour (-1 for none). The
  distinct visitors of any span of hours are its rows whose previous hour is before the
  span, so the days of any whole-hour time zone are counted exactly, without a set of
  ids. A row is keyed by the id of the visitor's first page view in the hour, not by the
  visitor: new rows go to the end of their hour (as event ids grow), not into random
  pages of it, and the table holds no visitor id.

They cover the page views up to ``rollup_state.tallied`` (an ``events.id``), exactly:

* a catch-up job (``catchup.py``: every second in the collector, and before the
  dashboard reads) counts the page views committed past that mark, in storage order,
  a step of 2,000 event ids at a time. ``plan`` has the database count them with
  grouped reads off the write path (no row per page view comes into Python): pages per
  hour and URL, each new session's landing; a visitor with a counted page view in a
  later hour than a new one (out of time order) is tallied whole in Python instead.
  ``commit`` applies the step under the write lock, unless a delete
  (``rollup_state.deletes``) or another step came between, and adds each new
  visitor-hour with the visitor's previous one in a single ``INSERT … SELECT``. On
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

from tracker.storage.script import Insert, Script, rows, run, value
from tracker.storage.tables.tally import (
    DAILY,
    HOUR_MS,
    Tally,
    View,
    VisitorRow,
    tally,
)

VIEW_COLUMNS = (
    "id, site_id, vid, sid, at, url, referrer, utm_source, utm_medium, utm_campaign,"
    " device, browser, os"
)
VIEWS_PER_QUERY = 500


def apply(delta: Tally, gone: Iterable[VisitorRow] = ()) -> Script[None]:
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
        visitors = [(site, hour, first, prev)
                    for (site, hour, _), (prev, first) in delta.visitors.items()]  # fmt: skip
        yield Insert("rollup_visitors", VISITOR_COLUMNS, visitors, on_conflict=NEW_PREV)
    for site, hour, first in sorted(set(gone)):
        yield run(
            "DELETE FROM rollup_visitors WHERE site_id = ? AND hour = ? AND first_id = ?",
            site, hour, first,
        )  # fmt: skip


COUNT_COLUMNS = ("site_id", "dim", "hour", "value", "pageviews", "sessions")
VISITOR_COLUMNS = ("site_id", "hour", "first_id", "prev_hour")
NEW_PREV = "(site_id, hour, first_id) DO UPDATE SET prev_hour = excluded.prev_hour"
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
