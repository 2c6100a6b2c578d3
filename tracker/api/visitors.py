"""Visitors: an anonymous visitor's history, links and consent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from privacy import consent
from tracker.api import answers
from tracker.api.auth import require, scope_of
from tracker.api.common import (
    audit_read,
    event_view,
    int_param,
    json_response,
    link_view,
    services_of,
    site_keys,
)
from tracker.api.fields import VISITOR_ID, VisitorEventLimit
from tracker.api.leads import receipt_item
from tracker.errors import NotFound


async def visitor(request: Request) -> Response:
    key = await require(request, "read")
    services = services_of(request)
    vid = request.path_params["vid"]
    if not VISITOR_ID.fullmatch(vid):
        raise NotFound("visitor not found")
    limit = int_param(request, "limit", 1000, VisitorEventLimit)
    scope = scope_of(key)  # a limited key sees the visitor on its sites only
    events = await services.store.visitor_events(vid, limit=limit, sites=scope.ids)
    links = scope.only(await services.store.links_of_visitor(vid))
    receipts = scope.only(await services.store.consent_receipts_of([vid]))
    if not (events or links or receipts):
        raise NotFound("visitor not found")
    await audit_read(services, key, "visitor.read", vid, events=len(events))
    keys = site_keys(services)
    states = []
    for site_id in sorted({e.site_id for e in events} | {r.site_id for r in receipts}):
        site = services.sites.by_id(site_id)
        if site is not None:
            state = consent.effective(site.consent_mode,
                                      await services.store.consent_state(site_id, vid))  # fmt: skip
            states.append(answers.VisitorConsent(site.key, state.analytics, state.marketing,
                                                 state.gpc))  # fmt: skip
    return json_response(
        answers.Visitor(
            vid,
            events=[event_view(e, keys) for e in events],
            links=[link_view(link, keys) for link in links],
            consent=states,
            consent_receipts=[receipt_item(r, keys) for r in receipts],
        )
    )
