"""The marketing dashboard's numbers: one typed call the console and the API share.

    reports = Reports(store)
    board = await reports.dashboard(site_id, date(2026, 11, 1), date(2026, 11, 30),
                                    tz="Asia/Tokyo", filters=Filters(campaign="autumn"))
    board.days[0].visitors, board.totals.pageviews, board.top["pages"][0].value, ...

``start`` and ``end`` are local dates in ``tz`` (both included). What is counted (the
roll-ups' definitions, ``tracker/storage/tables/rollups.py``):

* **page views**; **visitors**: distinct visitor ids with a page view (per day, and over
  the whole range in ``totals``); **sessions**: a (visitor, sid) counted once, on the day
  of its first page view, with that page view's entry page, referrer host, UTM source /
  medium / campaign, device, browser and OS;
* **top lists** (``top``): ``pages`` by page views; ``entry_pages``, ``referrers``,
  ``sources``, ``mediums``, ``campaigns``, ``devices``, ``browsers``, ``os`` by sessions
  (``""`` is "none": direct traffic, no UTM, unknown device);
* **new leads**: unmerged leads created that day with a visitor on the site; **hot
  leads**: times a lead's score crossed into hot on the site that day;
* **attribution**: per campaign, new leads and hot crossings by the lead's first touch
  and by its last touch;
* **live_visitors**: distinct visitors with any event in the last 30 minutes.

Without filters the numbers come from the hourly roll-ups (an hour regroups into the
days of any whole-hour time zone; a zone with a half-hour offset has its days cut at
the UTC hour before its midnight). With filters, or while a rebuild of the roll-ups
runs, they come from the raw page views of the range (``source`` says which): a session
matches when its first page view in the range has the filter's source, medium and
campaign and it viewed the filter's page in the range; the page views counted are that
session's. A campaign filter also narrows the lead counts to leads whose first or last
touch is that campaign.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracker.errors import Invalid
from tracker.storage import Store
from tracker.storage.tables.reports import LeadCounts, Readings
from tracker.storage.tables.tally import HOUR_MS, SESSION_DIMENSIONS, Tally, View, tally
from tracker.urls import path_of

TOP_LISTS = {"pages": "page", "entry_pages": "entry", "referrers": "referrer",
             "sources": "source", "mediums": "medium", "campaigns": "campaign",
             "devices": "device", "browsers": "browser", "os": "os"}  # fmt: skip
LIVE_MS = 30 * 60_000
MAX_DAYS = 400


@dataclass(frozen=True, slots=True)
class Filters:
    page: str | None = None
    """A page path, e.g. ``/pricing``."""
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None

    @property
    def any(self) -> bool:
        return any((self.page, self.source, self.medium, self.campaign))


@dataclass(frozen=True, slots=True)
class Day:
    date: dt.date
    visitors: int
    pageviews: int
    sessions: int
    new_leads: int
    hot_leads: int


@dataclass(frozen=True, slots=True)
class Totals:
    visitors: int
    """Distinct over the whole range (not the sum of the days)."""
    pageviews: int
    sessions: int
    new_leads: int
    hot_leads: int


@dataclass(frozen=True, slots=True)
class Row:
    value: str
    pageviews: int
    sessions: int


@dataclass(frozen=True, slots=True)
class Attribution:
    campaign: str
    first_touch_leads: int
    last_touch_leads: int
    first_touch_hot: int
    last_touch_hot: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    site_id: int
    start: dt.date
    end: dt.date
    tz: str
    filters: Filters
    days: list[Day]
    totals: Totals
    top: dict[str, list[Row]]
    """``TOP_LISTS`` keys, each at most ``limit`` rows, biggest first."""
    attribution: list[Attribution]
    live_visitors: int
    source: str
    """``rollups`` or ``events`` (raw page views)."""


@dataclass(slots=True)
class _Range:
    zone: ZoneInfo
    days: list[dt.date]
    bounds: list[int]
    """ms at each day's local midnight, and at the end of the last day."""
    hours: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hours = [b // HOUR_MS for b in self.bounds]

    def day_of_hour(self, hour: int) -> int:
        return bisect.bisect_right(self.hours, hour) - 1

    def day_of_ms(self, at: int) -> int:
        return bisect.bisect_right(self.bounds, at) - 1


def date_range(start: dt.date, end: dt.date, tz: str) -> _Range:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid("tz: not a known time zone") from exc
    if end < start or (end - start).days >= MAX_DAYS:
        raise Invalid(f"the range must run forwards and span at most {MAX_DAYS} days")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    bounds = [_midnight(d, zone) for d in [*days, end + dt.timedelta(days=1)]]
    return _Range(zone, days, bounds)


def _midnight(day: dt.date, zone: ZoneInfo) -> int:
    return int(dt.datetime.combine(day, dt.time(), zone).timestamp() * 1000)


class Reports:
    def __init__(self, store: Store, *, now: Callable[[], float] = time.time) -> None:
        self.store = store
        self._now = now

    async def dashboard(
        self,
        site_id: int,
        start: dt.date,
        end: dt.date,
        *,
        tz: str = "UTC",
        filters: Filters = Filters(),
        limit: int = 10,
    ) -> Dashboard:
        span = date_range(start, end, tz)
        raw = filters.any or not await self.store.rollups_ready()
        t0, t1 = span.bounds[0], span.bounds[-1]
        if raw:
            series, visitors, top = await self._from_events(site_id, span, filters, limit)
        found = await self.store.readings(
            site_id, None if raw else span.hours, t0, t1, dims=list(TOP_LISTS.values()),
            limit=limit, campaign=filters.campaign, live_since=int(self._now() * 1000) - LIVE_MS,
        )  # fmt: skip
        if not raw:
            series, visitors, top = _from_rollups(found, span)
        new_per, hot_per = _per_day(found.new, span), _per_day(found.hot, span)
        days = [Day(d, visitors[i], series[i][0], series[i][1], new_per[i], hot_per[i])
                for i, d in enumerate(span.days)]  # fmt: skip
        totals = Totals(visitors[-1], sum(s[0] for s in series), sum(s[1] for s in series),
                        sum(new_per), sum(hot_per))  # fmt: skip
        return Dashboard(site_id, start, end, tz, filters, days, totals, top,
                         attribution(found.new, found.hot), found.live,
                         "events" if raw else "rollups")  # fmt: skip

    async def _from_events(
        self, site_id: int, span: _Range, filters: Filters, limit: int
    ) -> tuple[list[list[int]], list[int], dict[str, list[Row]]]:
        utm = (filters.source, filters.medium, filters.campaign)
        views, earlier = await self.store.page_views(site_id, span.bounds[0], span.bounds[-1], utm)
        counted = tally(matching(views, filters), earlier)
        return summarize(counted, span, limit)


def _from_rollups(
    found: Readings, span: _Range
) -> tuple[list[list[int]], list[int], dict[str, list[Row]]]:
    """The roll-ups' readings by local day (an hour regroups into its day)."""
    series = [[0, 0] for _ in span.days]
    for hour, views, sessions in found.hourly:
        day = series[span.day_of_hour(hour)]
        day[0] += views
        day[1] += sessions
    top = {name: [Row(*r) for r in rows] for name, rows in zip(TOP_LISTS, found.top, strict=True)}
    return series, found.visitors, top


def matching(views: list[View], filters: Filters) -> list[View]:
    """The page views of the sessions that match every filter (see the module's text)."""
    if not filters.any:
        return views
    first: dict[tuple[int, str, str], View] = {}
    pages: set[tuple[int, str, str]] = set()
    for v in views:
        key = (v[1], v[2], v[3] or "")
        first.setdefault(key, v)
        if filters.page is not None and path_of(v[5]) == filters.page:
            pages.add(key)
    wanted = {
        key for key, v in first.items()
        if all(f is None or f == (got or "") for f, got in
               ((filters.source, v[7]), (filters.medium, v[8]), (filters.campaign, v[9])))
        and (filters.page is None or key in pages)
    }  # fmt: skip
    return [v for v in views if (v[1], v[2], v[3] or "") in wanted]


def summarize(
    counted: Tally, span: _Range, limit: int
) -> tuple[list[list[int]], list[int], dict[str, list[Row]]]:
    """A tally of raw page views shaped as the roll-up reads are."""
    series = [[0, 0] for _ in span.days]
    per_dim: dict[str, dict[str, list[int]]] = {}
    for (_, dim, hour, val), views, sessions in counted.rows():
        if dim.endswith("/day"):
            continue
        if dim == "":
            series[span.day_of_hour(hour)][0] += views
            series[span.day_of_hour(hour)][1] += sessions
        else:
            row = per_dim.setdefault(dim, {}).setdefault(val, [0, 0])
            row[0] += views
            row[1] += sessions
    per_day: list[set[str]] = [set() for _ in span.days]
    for _, hour, vid in counted.visitors:
        per_day[span.day_of_hour(hour)].add(vid)
    visitors = [len(s) for s in per_day] + [len({v[2] for v in counted.visitors})]
    top = {}
    for name, dim in TOP_LISTS.items():
        col = 0 if dim == "page" else 1
        found = sorted(per_dim.get(dim, {}).items(), key=lambda kv: (-kv[1][col], kv[0]))
        top[name] = [Row(k, v[0], v[1]) for k, v in found[:limit]]
    return series, visitors, top


def _per_day(counts: LeadCounts, span: _Range) -> list[int]:
    per_day = [0] * len(span.days)
    for at, count in counts.hours:
        per_day[span.day_of_ms(at)] += count
    return per_day


def attribution(new: LeadCounts, hot: LeadCounts) -> list[Attribution]:
    """Per campaign ("" for none): leads and hot crossings by first and by last touch,
    the most new leads first."""
    table: dict[str, list[int]] = {}
    for counts, offset in ((new, 0), (hot, 2)):
        for first, last, count in counts.campaigns:
            table.setdefault(first, [0, 0, 0, 0])[offset] += count
            table.setdefault(last, [0, 0, 0, 0])[offset + 1] += count
    ranked = sorted(table.items(), key=lambda kv: (-kv[1][0] - kv[1][1], -kv[1][2], kv[0]))
    return [Attribution(c, *counts) for c, counts in ranked]


assert set(TOP_LISTS.values()) == {"page", *SESSION_DIMENSIONS}
