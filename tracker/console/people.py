"""One person's pages: the lead (traits, score and why, browsers, touches, consent,
actions by role), the lead's timeline, and an anonymous visitor's sessions.

The lead's data is read as the API reads it (``tracker.api.leads``, ``api.scoring``)
and each viewing is written to the audit log as an API read is. Export and erasure are
legal's: the lead page hands them to the data-subject request flow (with its typed
confirmation and re-authentication), never does them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import RedirectResponse, Response

from identity import merging
from tracker.api import answers
from tracker.api.common import event_view, link_view, site_keys
from tracker.api.fields import LEAD_ID, VISITOR_ID
from tracker.api.leads import detail_view, receipt_item, timeline_items
from tracker.api.scoring import score_view
from tracker.console import timeline
from tracker.console.leads import merge_into
from tracker.console.web import Console, page
from tracker.errors import NotFound
from tracker.scope import sees_lead
from tracker.storage.records import Event, LeadRow

VIEW_ROLES = ("marketing", "admin", "legal")
ACT_ROLES = ("marketing", "admin")
TIMELINE_EVENTS = 10_000
VISITOR_EVENTS = 2_000
WHY_SHOWN = 12
PAGE_ENTRIES = 1_000
"""Timeline lines per page; "earlier" shows the next older ones."""


@dataclass(frozen=True, slots=True)
class Browser:
    """A linked visitor as the lead page lists it: the link and the device it used."""

    link: answers.VisitorLink
    device: str


def device_of(events: list[Event]) -> str:
    e = events[0] if events else None
    if e is None:
        return ""
    return " · ".join(x for x in (e.device, e.browser, e.os) if x)


async def _lead(console: Console) -> LeadRow:
    """The lead the address names, after merges; 404 alike for malformed and unknown."""
    lead_id, store = console.request.path_params["lead_id"], console.services.store
    root = await store.resolve_lead(lead_id) if LEAD_ID.fullmatch(lead_id) else None
    lead = await store.lead(root) if root else None
    if lead is None or not await sees_lead(store, console.scope, lead.id):
        raise NotFound("lead not found")  # another site's lead: as an unknown one
    return lead


def site_names(console: Console) -> dict[str, str]:
    return {key: site.name for key, site in console.services.sites.current().items()}


def why(score: answers.LeadScore) -> list[answers.LedgerEntry]:
    """The entries that make the score now, largest first: the "why hot"."""
    engagement = [e for e in score.ledger if e.axis == "engagement" and e.counts]
    return sorted(engagement, key=lambda e: -abs(e.counts))[:WHY_SHOWN]


@page(*VIEW_ROLES)
async def lead_page(console: Console) -> Response:
    services = console.services
    lead = await _lead(console)
    scope = console.scope
    detail = await detail_view(services, lead, scope)
    score = await score_view(services, lead.id, None, scope)
    browsers = [Browser(link, device_of(await services.store.visitor_events(
                    link.visitor, limit=1, sites=scope.ids)))
                for link in detail.visitors]  # fmt: skip
    await console.audit("console.lead.read", lead.id)
    return console.render("lead.html", lead=detail, score=score, why=why(score),
                          fit=[e for e in score.ledger if e.axis == "fit"],
                          browsers=browsers, merges=await services.store.merges_of([lead.id]),
                          identified_at=timeline.identified_at(detail.visitors),
                          site_names=site_names(console), path_of=timeline.path_of)  # fmt: skip


@page(*VIEW_ROLES)
async def lead_timeline(console: Console) -> Response:
    """Every session by day, newest first; the browsing before the form marked."""
    services = console.services
    lead = await _lead(console)
    scope = console.scope
    detail = await detail_view(services, lead, scope)
    items, events = await timeline_items(services, lead, limit=TIMELINE_EVENTS, scope=scope)
    score = await score_view(services, lead.id, None, scope)
    merged: list[Any] = [*items, *score.ledger]
    merged.sort(key=lambda item: item.at)  # stable: a score change after what earned it
    before = timeline.before_param(console.request.query_params.get("before"))
    shown, earlier = timeline.window(merged, before, PAGE_ENTRIES)
    first = timeline.identified_at(detail.visitors)
    days = timeline.arrange(shown, console.clock, identified_at=first)
    await console.audit("console.lead.timeline", lead.id, events=events)
    return console.render("timeline.html", lead=detail, days=days, identified_at=first,
                          truncated=events >= TIMELINE_EVENTS, events=events,
                          earlier=earlier, newer=before is not None,
                          anonymous=timeline.before_identifying(items, first),
                          path_of=timeline.path_of, host_of=timeline.host_of,
                          hhmm=lambda ms: timeline.clock_time(console.clock, ms))  # fmt: skip


@page(*VIEW_ROLES)
async def visitor_page(console: Console) -> Response:
    """An anonymous visitor's sessions and pages; a linked one points to its lead."""
    services, vid = console.services, console.request.path_params["vid"]
    if not VISITOR_ID.fullmatch(vid):
        raise NotFound("visitor not found")
    scope = console.scope  # a site-limited user sees the visitor on their sites only
    events = await services.store.visitor_events(vid, limit=VISITOR_EVENTS, sites=scope.ids)
    links = scope.only(await services.store.links_of_visitor(vid))
    receipts = scope.only(await services.store.consent_receipts_of([vid]))
    if not (events or links or receipts):
        raise NotFound("visitor not found")
    keys = site_keys(services)
    items: list[Any] = [event_view(e, keys) for e in events]
    items += [receipt_item(r, keys) for r in receipts]
    items.sort(key=lambda item: item.at)
    before = timeline.before_param(console.request.query_params.get("before"))
    shown, earlier = timeline.window(items, before, PAGE_ENTRIES)
    link_views = [link_view(link, keys) for link in links]
    first = timeline.identified_at(link_views)
    days = timeline.arrange(shown, console.clock, identified_at=first)
    await console.audit("console.visitor.read", vid, events=len(events))
    return console.render("visitor.html", vid=vid, days=days, links=link_views,
                          earlier=earlier, newer=before is not None,
                          device=device_of(events), events=len(events),
                          truncated=len(events) >= VISITOR_EVENTS, identified_at=first,
                          path_of=timeline.path_of, host_of=timeline.host_of,
                          hhmm=lambda ms: timeline.clock_time(console.clock, ms))  # fmt: skip


@page(*ACT_ROLES)
async def lead_merge(console: Console) -> Response:
    """Merge another lead (by id, or by its email) into this one; recorded, reversible."""
    lead = await _lead(console)
    other = console.form.get("other").strip()
    if "@" in other:
        found = await console.services.store.lead_by_index(
            console.services.personal.email_index(other)
        )
        other = found.id if found else ""
    if not LEAD_ID.fullmatch(other):
        raise NotFound("lead not found")
    await merge_into(console, lead.id, other, console.form.get("reason") or "console")
    return RedirectResponse(f"/admin/leads/{lead.id}", 303)


@page(*ACT_ROLES)
async def lead_unmerge(console: Console) -> Response:
    """Undo the open merge of ``other`` into this lead, exactly."""
    lead_id = console.request.path_params["lead_id"]
    other = console.form.get("other").strip()
    store = console.services.store
    pair = (lead_id, other)
    found = await store.open_merge(*pair) if all(map(LEAD_ID.fullmatch, pair)) else None
    if found is None:
        raise NotFound("merge not found")
    record = await store.unmerge_leads(found.id, actor=console.actor,
                                       reason=console.form.get("reason").strip()[:500],
                                       at=console.clock.now_ms,
                                       rules=merging.Rules())  # fmt: skip
    await console.audit("lead.unmerge", record.id, into=record.into_lead,
                        unmerged=record.from_lead)  # fmt: skip
    return RedirectResponse(f"/admin/leads/{lead_id}", 303)
