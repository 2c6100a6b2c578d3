"""What the dashboard reads: roll-ups by hour, leads created and turned hot, the live
count, and (with filters, or before the roll-ups cover every visitor) raw page views.

Ranges are half-open: hours ``[h0, h1)`` (UTC hours since the epoch), times ``[t0, t1)``
in ms. Answers are plain tuples of numbers and strings; ``tracker.reports`` shapes them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.storage.script import Script, row, rows, value
from tracker.storage.tables import Tables
from tracker.storage.tables.rollups import VIEW_COLUMNS
from tracker.storage.tables.tally import DAILY, HOUR_MS, View

Session = tuple[int, str, str]
"""(site_id, vid, sid)."""


@dataclass(frozen=True, slots=True)
class LeadCounts:
    """Leads created, or turned hot, in a range, counted by the database in one statement
    (a month of a busy site is tens of thousands of leads; this is a few hundred rows)."""

    hours: list[tuple[int, int]]
    """(ms at the start of a UTC hour, how many in it), for the hours with some."""
    campaigns: list[tuple[str, str, int]]
    """(campaign of the first touch, of the last touch, how many); "" for none."""


def hourly_totals(site_id: int, h0: int, h1: int) -> Script[list[tuple[int, int, int]]]:
    found = yield rows(
        "SELECT hour, pageviews, sessions FROM rollup_counts WHERE site_id = ? AND dim = ?"
        " AND hour >= ? AND hour < ?",
        site_id, "", h0, h1,
    )  # fmt: skip
    return [(int(h), int(p), int(s)) for h, p, s in found]


def top_values(
    site_id: int, dim: str, h0: int, h1: int, limit: int
) -> Script[list[tuple[str, int, int]]]:
    """The biggest values over ``[h0, h1)``; a ``DAILY`` dimension reads its whole UTC
    days from the day rows and only the hours at either end from the hour rows."""
    d0, d1 = -(-h0 // 24) * 24, h1 // 24 * 24
    parts = [(dim, h0, h1)]
    if dim in DAILY and d0 < d1:
        parts = [(dim, h0, d0), (f"{dim}/day", d0, d1), (dim, d1, h1)]
    union = " UNION ALL ".join(
        ["SELECT value, pageviews, sessions FROM rollup_counts WHERE site_id = ? AND dim = ?"
         " AND hour >= ? AND hour < ?"] * len(parts)
    )  # fmt: skip
    order = "2 DESC" if dim == "page" else "3 DESC"
    found = yield rows(
        f"SELECT value, SUM(pageviews), SUM(sessions) FROM ({union}) AS r GROUP BY value"
        f" ORDER BY {order}, 1 LIMIT ?",
        *(a for part in parts for a in (site_id, *part)), limit,
    )  # fmt: skip
    return [(str(v), int(p), int(s)) for v, p, s in found]


def distinct_visitors(
    site_id: int, spans: Sequence[tuple[int, int]], since: int
) -> Script[list[tuple[int, int]]]:
    """Per span of hours: its distinct visitors (its visitor-hours whose visitor's
    previous hour is before the span), and its visitor-hours whose previous hour is
    before ``since``: over spans that tile ``[since, end)``, those add up to the distinct
    visitors of the whole (one pass over the rows for both)."""
    counts = []
    for h0, h1 in spans:
        found = yield row(
            "SELECT COUNT(*) FILTER (WHERE prev_hour < ?), COUNT(*) FILTER (WHERE prev_hour < ?)"
            " FROM rollup_visitors WHERE site_id = ? AND hour >= ? AND hour < ?",
            h0, since, site_id, h0, h1,
        )  # fmt: skip
        counts.append((int(found[0] or 0), int(found[1] or 0)))
    return counts


def new_leads(site_id: int, t0: int, t1: int, campaign: str | None) -> Script[LeadCounts]:
    """Unmerged leads created in the range that have a visitor on the site; with
    ``campaign``, those whose first or last touch has it."""
    return (yield from _lead_counts(
        "SELECT l.created_at AS at, {touches} FROM leads l WHERE l.created_at >= ?"
        " AND l.created_at < ? AND l.merged_into IS NULL"
        " AND EXISTS (SELECT 1 FROM links k WHERE k.lead_id = l.id AND k.site_id = ?)",
        (t0, t1, site_id), campaign,
    ))  # fmt: skip


def hot_leads(site_id: int, t0: int, t1: int, campaign: str | None) -> Script[LeadCounts]:
    """Each time a lead's score crossed into hot on the site in the range."""
    return (yield from _lead_counts(
        "SELECT h.at AS at, {touches} FROM hot_crossings h JOIN leads l ON l.id = h.lead_id"
        " WHERE h.site_id = ? AND h.at >= ? AND h.at < ?",
        (site_id, t0, t1), campaign,
    ))  # fmt: skip


TOUCHES = (
    "COALESCE(l.first_campaign, '') AS first_campaign,"
    " COALESCE(l.last_campaign, '') AS last_campaign"
)
"""The campaigns of a lead's first and last touch (kept beside the touches' JSON)."""


def _lead_counts(chosen: str, args: tuple[Any, ...], campaign: str | None) -> Script[LeadCounts]:
    """``chosen`` (a time ``at`` and the ``TOUCHES`` per lead) counted per UTC hour and
    per pair of campaigns: one pass over the leads, materialized once for both counts."""
    narrow, extra = ("", ()) if campaign is None else (
        " WHERE ? IN (first_campaign, last_campaign)", (campaign,))  # fmt: skip
    found = yield rows(
        f"WITH m AS MATERIALIZED ({chosen.format(touches=TOUCHES)})"
        f" SELECT 0, at / {HOUR_MS}, '', '', COUNT(*) FROM m{narrow} GROUP BY at / {HOUR_MS}"
        f" UNION ALL SELECT 1, 0, first_campaign, last_campaign, COUNT(*) FROM m{narrow}"
        " GROUP BY first_campaign, last_campaign",
        *args, *extra, *extra,
    )  # fmt: skip
    hours = [(int(r[1]) * HOUR_MS, int(r[4])) for r in found if r[0] == 0]
    pairs = [(str(r[2]), str(r[3]), int(r[4])) for r in found if r[0] == 1]
    return LeadCounts(hours, pairs)


def live_visitors(site_id: int, since: int) -> Script[int]:
    found = yield value(
        "SELECT COUNT(DISTINCT vid) FROM events WHERE at >= ? AND site_id = ?", since, site_id
    )
    return int(found or 0)


UTM = ("utm_source", "utm_medium", "utm_campaign")
TAGGED = "(utm_source IS NOT NULL OR utm_medium IS NOT NULL OR utm_campaign IS NOT NULL)"
"""The condition of the partial index ``events_tagged``: page views that carry UTM."""


def page_views(
    site_id: int, t0: int, t1: int, utm: Sequence[str | None] = (None, None, None)
) -> Script[tuple[list[View], set[Session]]]:
    """The site's page views in the range in storage order, and the sessions among
    theirs whose first page view (in storage order) is not one of them. With UTM values
    (source, medium, campaign; None for any), only the views of visitors with a page
    view carrying them in the range (found over ``events_tagged``)."""
    wanted = [(col, val) for col, val in zip(UTM, utm, strict=True) if val is not None]
    if wanted:
        tagged = yield rows(
            f"SELECT DISTINCT vid FROM events WHERE {TAGGED} AND site_id = ? AND at >= ?"
            " AND at < ? AND type = ?" + "".join(f" AND {col} = ?" for col, _ in wanted),
            site_id, t0, t1, "pageview", *(val for _, val in wanted),
        )  # fmt: skip
        views = yield from _views_of(sorted(r[0] for r in tagged), site_id, t0, t1)
    else:
        found = yield rows(
            f"SELECT {VIEW_COLUMNS} FROM events WHERE at >= ? AND at < ? AND site_id = ?"
            " AND type = ? ORDER BY id",
            t0, t1, site_id, "pageview",
        )  # fmt: skip
        views = [tuple(r) for r in found]
    ids = {v[0] for v in views}
    vids, earlier = sorted({v[2] for v in views}), set[Session]()
    for start in range(0, len(vids), 500):
        firsts = yield rows(
            "SELECT vid, sid, MIN(id) FROM events WHERE vid IN ? AND site_id = ? AND type = ?"
            " GROUP BY vid, sid",
            vids[start : start + 500], site_id, "pageview",
        )  # fmt: skip
        earlier |= {(site_id, v, sid or "") for v, sid, first in firsts if first not in ids}
    return views, earlier


def _views_of(vids: list[str], site_id: int, t0: int, t1: int) -> Script[list[View]]:
    views = list[View]()
    for start in range(0, len(vids), 500):
        found = yield rows(
            f"SELECT {VIEW_COLUMNS} FROM events WHERE vid IN ? AND at >= ? AND at < ?"
            " AND site_id = ? AND type = ?",
            vids[start : start + 500], t0, t1, site_id, "pageview",
        )  # fmt: skip
        views += [tuple(r) for r in found]
    views.sort(key=lambda v: v[0])
    return views


@dataclass(frozen=True, slots=True)
class Readings:
    """What the dashboard reads for a range, all at once (``ReportTables.readings``)."""

    hourly: list[tuple[int, int, int]]
    """(UTC hour, page views, sessions) for the hours with some; from the roll-ups."""
    visitors: list[int]
    """Distinct visitors per day, then over the whole range; from the roll-ups."""
    top: list[list[tuple[str, int, int]]]
    """Per dimension asked: (value, page views, sessions), the biggest first."""
    new: LeadCounts
    hot: LeadCounts
    live: int


class ReportTables(Tables):
    """The dashboard's reads: mixed into both stores."""

    async def readings(
        self,
        site_id: int,
        hours: Sequence[int] | None,
        t0: int,
        t1: int,
        *,
        dims: Sequence[str],
        limit: int,
        campaign: str | None,
        live_since: int,
    ) -> Readings:
        """The dashboard's reads, independent of each other, at once (``read_all``): the
        roll-ups' for the days starting at ``hours`` (UTC hours; the last one ends the
        range; None: not from the roll-ups), and the leads' in ``[t0, t1)``."""
        days = list(itertools.pairwise(hours)) if hours else []
        half = len(days) // 2  # two scripts, to run side by side
        rollups = [
            distinct_visitors(site_id, days[:half], hours[0]),
            distinct_visitors(site_id, days[half:], hours[0]),
            hourly_totals(site_id, hours[0], hours[-1]),
            *(top_values(site_id, dim, hours[0], hours[-1], limit) for dim in dims),
        ] if hours else []  # fmt: skip
        found = await self.read_all([
            new_leads(site_id, t0, t1, campaign), *rollups,
            hot_leads(site_id, t0, t1, campaign), live_visitors(site_id, live_since),
        ])  # fmt: skip
        new, *rolled, hot, live = found
        if not rolled:
            return Readings([], [], [], new, hot, live)
        first, second, hourly, *top = rolled
        visitors = [*first, *second]
        per_day = [n for n, _ in visitors]
        return Readings(hourly, [*per_day, sum(n for _, n in visitors)], top, new, hot, live)

    async def page_views(
        self, site_id: int, t0: int, t1: int, utm: Sequence[str | None] = (None, None, None)
    ) -> tuple[list[View], set[Session]]:
        return await self.read(page_views(site_id, t0, t1, utm))
