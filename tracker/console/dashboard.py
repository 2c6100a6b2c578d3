"""Marketing's dashboard: one site's traffic over today, 7 or 30 days or chosen dates,
in the user's zone, with filters that combine (a page, a source, a medium, a campaign).

The numbers come from ``tracker.reports`` (daily roll-ups, or the raw page views when
filtered); this module only reads the request, draws the charts and links every value
to the filter it sets. Nothing here names a person, so a viewing is not audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date
from starlette.responses import Response

from tracker.console import chart
from tracker.console.leads import allowed_sites
from tracker.console.web import Console, page
from tracker.errors import Invalid
from tracker.reports import Filters, Reports
from tracker.storage.records import Site

RANGES = {"today": 1, "7d": 7, "30d": 30}
FILTERS = ("page", "source", "medium", "campaign")
MAX_FILTER = 500
LIVE_MS = 30 * 60_000
LIVE_SHOWN = 20
FILTERED_BY = {"pages": "page", "entry_pages": "page", "sources": "source",
               "mediums": "medium", "campaigns": "campaign"}  # fmt: skip
TOP_ORDER = ("pages", "entry_pages", "referrers", "campaigns", "sources", "mediums",
             "devices", "browsers", "os")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Choice:
    """What the page shows: the site, the dates, the filters (from the query string)."""

    site: Site
    range: str
    start: dt.date
    end: dt.date
    filters: Filters

    def query(self, **changes: str | None) -> str:
        """This page's address with ``changes`` (a None value drops that parameter)."""
        params: dict[str, str | None] = {"site": self.site.key, "range": self.range}
        if self.range == "custom":
            params |= {"from": self.start.isoformat(), "to": self.end.isoformat()}
        params |= {name: getattr(self.filters, name) for name in FILTERS}
        params |= changes
        if params.get("range") != "custom":
            params.pop("from", None)
            params.pop("to", None)
        return "/admin/dashboard?" + urlencode({k: v for k, v in params.items() if v})


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Invalid("choose dates as YYYY-MM-DD") from None


def choice_of(console: Console, sites: list[Site]) -> Choice:
    query = console.request.query_params
    site = next((s for s in sites if s.key == query.get("site")), sites[0])
    today = dt.datetime.fromtimestamp(console.clock.now_ms / 1000, console.clock.zone).date()
    chosen = query.get("range", "7d")
    if chosen == "custom":
        start, end = _date(query.get("from", "")), _date(query.get("to", ""))
    else:
        chosen = chosen if chosen in RANGES else "7d"
        start, end = today - dt.timedelta(days=RANGES[chosen] - 1), today
    values = {name: (query.get(name) or "").strip()[:MAX_FILTER] or None for name in FILTERS}
    return Choice(site, chosen, start, end, Filters(**values))


@page("marketing", "admin")
async def dashboard_page(console: Console) -> Response:
    sites = allowed_sites(console)
    if not sites:
        return console.render("dashboard.html", choice=None, board=None, sites=[])
    choice = choice_of(console, sites)
    board = await Reports(console.services.store).dashboard(
        choice.site.id, choice.start, choice.end, tz=console.clock.zone.key,
        filters=choice.filters,
    )  # fmt: skip
    now = console.clock.now_ms
    store = console.services.store
    recent = await store.recent_visitors(choice.site.id, since=now - LIVE_MS, limit=LIVE_SHOWN)
    known = await store.leads_of_visitors([vid for vid, _, _ in recent], at=now)
    labels = [_label(d.date, console.clock.language, len(board.days)) for d in board.days]
    traffic = chart.line_chart([
        ("pageviews", [d.pageviews for d in board.days]),
        ("sessions", [d.sessions for d in board.days]),
        ("visitors", [d.visitors for d in board.days]),
    ], labels)  # fmt: skip
    leads = chart.bar_chart(
        [
            ("new_leads", [d.new_leads for d in board.days]),
            ("hot_leads", [d.hot_leads for d in board.days]),
        ],
        labels,
    )
    return console.render("dashboard.html", choice=choice, board=board, sites=sites,
                          traffic=traffic, leads_chart=leads, top_order=TOP_ORDER,
                          filtered_by=FILTERED_BY, ranges=list(RANGES),
                          active=[(n, getattr(choice.filters, n)) for n in FILTERS
                                  if getattr(choice.filters, n)],
                          widest=_widest(board.top), recent=recent, known=known)  # fmt: skip


def _label(day: dt.date, language: str, count: int) -> str:
    return format_date(day, "M/d" if count > 1 else "yyyy-MM-dd", locale=language)


def _widest(top: dict[str, Any]) -> dict[str, int]:
    """Each top list's largest figure (for the bars behind the rows)."""
    return {name: max([max(r.pageviews, r.sessions) for r in rows] or [1]) or 1
            for name, rows in top.items()}  # fmt: skip
