"""The marketing dashboard's numbers over the API (``tracker.reports``).

``GET /api/v1/reports/dashboard?site=KEY&from=YYYY-MM-DD&to=YYYY-MM-DD&tz=Asia/Tokyo``
with optional ``page``, ``source``, ``medium``, ``campaign`` filters (combined) and
``limit`` (rows per top list). Counts only: no person's data, so no audit row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from tracker.api import answers
from tracker.api.auth import require, scope_of
from tracker.api.common import int_param, json_response, query_param, services_of
from tracker.api.fields import SITE_KEY, ReportListSize
from tracker.errors import Invalid, NotFound
from tracker.http_errors import BadRequest
from tracker.reports import Dashboard, Day, Filters, Reports

FILTERS = ("page", "source", "medium", "campaign")


async def dashboard(request: Request) -> Response:
    api_key = await require(request, "read")
    services = services_of(request)
    key = query_param(request, "site")
    if key is None or not SITE_KEY.fullmatch(key):
        raise BadRequest("site is required (a site key)")
    site = (await services.sites.snapshot(wanted=[key])).get(key)
    if site is None or not scope_of(api_key).allows(site.id):
        raise NotFound("unknown site")  # another site than a limited key's: as unknown
    start, end = _date(request, "from"), _date(request, "to")
    filters = Filters(**{name: query_param(request, name) for name in FILTERS})
    if any(len(v or "") > 1000 for v in dataclasses.astuple(filters)):
        raise BadRequest("a filter is at most 1000 characters")
    limit = int_param(request, "limit", 10, ReportListSize)
    try:
        board = await Reports(services.parts.store).dashboard(
            site.id, start, end, tz=query_param(request, "tz") or "UTC", filters=filters,
            limit=limit,
        )  # fmt: skip
    except Invalid as exc:
        raise BadRequest(str(exc)) from None
    return json_response(view(key, board))


def _date(request: Request, name: str) -> dt.date:
    raw = query_param(request, name)
    if raw is None:
        raise BadRequest(f"{name} is required (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(raw) if len(raw) == 10 else _bad(name)
    except ValueError:
        return _bad(name)


def _bad(name: str) -> dt.date:
    raise BadRequest(f"{name} must be a date, YYYY-MM-DD")


def _day(day: Day) -> answers.ReportDay:
    return answers.ReportDay(day.date.isoformat(), day.visitors, day.pageviews, day.sessions,
                             day.new_leads, day.hot_leads)  # fmt: skip


def view(site_key: str, board: Dashboard) -> answers.Dashboard:
    totals = board.totals
    return answers.Dashboard(
        site_key, board.start.isoformat(), board.end.isoformat(), board.tz,
        {k: v for k, v in dataclasses.asdict(board.filters).items() if v is not None},
        [_day(d) for d in board.days],
        answers.ReportDay("", totals.visitors, totals.pageviews, totals.sessions,
                          totals.new_leads, totals.hot_leads),
        {name: [answers.ReportRow(r.value, r.pageviews, r.sessions) for r in rows]
         for name, rows in board.top.items()},
        [answers.ReportAttribution(a.campaign, a.first_touch_leads, a.last_touch_leads,
                                   a.first_touch_hot, a.last_touch_hot)
         for a in board.attribution],
        board.live_visitors, "events" if board.source == "events" else "rollups",
    )  # fmt: skip
