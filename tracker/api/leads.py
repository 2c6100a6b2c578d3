"""Leads: list, lookup by email, detail, timeline, merge and unmerge."""

from __future__ import annotations

import secrets
from bisect import bisect_left, bisect_right

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from identity import merging
from privacy import consent
from privacy.export import submission_view
from tracker.api import answers, scoring
from tracker.api.auth import require, scope_of
from tracker.api.bodies import MergeBody, read_body
from tracker.api.common import (
    audit_read,
    decode_cursor,
    encode_cursor,
    event_item,
    int_param,
    json_response,
    lead_fields,
    link_view,
    now_ms,
    query_param,
    root_lead,
    services_of,
    site_keys,
)
from tracker.api.fields import LEAD_ID, LeadsPageSize, Millis, TimelineLimit
from tracker.beacon import is_email_address
from tracker.errors import NotFound
from tracker.http_errors import BadRequest
from tracker.scope import EVERY_SITE, SiteScope, seen_sites, visible_leads
from tracker.services import Services
from tracker.storage.records import ConsentReceipt, LeadRow, Link, Merge

SCAN_PAGES = 10
"""Pages of leads a limited key's listing reads on past other sites' leads."""


async def list_leads(request: Request) -> Response:
    """Unmerged leads changed since ``updated_since`` (ms), oldest change first; with
    ``grade`` (``sort``, ``site``), the leads of that grade now, by score (``api.scoring``)."""
    key = await require(request, "read")
    if {"grade", "sort", "site"} & request.query_params.keys():
        return await scoring.scored_leads(request, key)
    services = services_of(request)
    since = int_param(request, "updated_since", 0, Millis)
    limit = int_param(request, "limit", 100, LeadsPageSize)
    cursor = query_param(request, "cursor")
    after = _page_position(cursor) if cursor else None
    scope = scope_of(key)
    rows, on, more = await _visible_page(services, scope, since, after, limit)
    leads = []
    for row in rows:
        try:
            leads.append(answers.Lead(**await lead_fields(services, row, scope, on=on[row.id])))
        except NotFound:
            continue  # an erased lead's leftovers: not a lead any more, and not a failed page
    next_cursor = encode_cursor(*more) if more else None
    await audit_read(services, key, "leads.list", "*", leads=[lead.id for lead in leads])
    return json_response(answers.LeadsPage(leads, next_cursor))


async def _visible_page(
    services: Services, scope: SiteScope, since: int, after: tuple[int, str] | None, limit: int
) -> tuple[list[LeadRow], dict[str, frozenset[int]], tuple[int, str] | None]:
    """A page of the leads the scope sees, their sites, and where the next page starts
    (None: done). A limited key's page is read on past other sites' leads, up to
    ``SCAN_PAGES`` pages; it may then hold fewer than ``limit`` leads, with a cursor."""
    found: list[LeadRow] = []
    on: dict[str, frozenset[int]] = {}
    for _ in range(SCAN_PAGES):
        rows = await services.store.leads_page(updated_since=since, after=after, limit=limit)
        on |= await seen_sites(services.store, scope, [row.id for row in rows])
        found += [row for row in rows if row.id in on][: limit - len(found)]
        if len(rows) < limit:
            return found, on, None
        after = (rows[-1].updated_at, rows[-1].id)
        if len(found) == limit:
            last = found[-1]
            return found, on, (last.updated_at, last.id)
    return found, on, after


def _page_position(cursor: str) -> tuple[int, str]:
    """(updated_at, id) of the last lead of the previous page, checked: the store binds
    them as SQL integers and text, and a forged cursor must be a 400, not an overflow."""
    at, lead_id = decode_cursor(cursor, 2)
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at <= 2**62:
        raise BadRequest("cursor is not one this API gave out")
    if not isinstance(lead_id, str) or not LEAD_ID.fullmatch(lead_id):
        raise BadRequest("cursor is not one this API gave out")
    return at, lead_id


async def lookup(request: Request) -> Response:
    """400 for something that is not an address at all (a caller's mistake, said
    plainly); 404 alike for an address no lead has and an erased lead's: the answer
    tells nothing but "not here"."""
    key = await require(request, "read")
    services = services_of(request)
    email = query_param(request, "email") or ""
    if not email.strip() or len(email) > 254:
        raise BadRequest("email must be 1 to 254 characters")
    if not is_email_address(email):
        raise BadRequest("email is not an email address (name@domain)")
    found = await services.store.lead_by_index(services.personal.email_index(email))
    scope = scope_of(key)
    try:
        lead = await root_lead(services, found.id, scope) if found else None
        view = await detail_view(services, lead, scope) if lead else None
    except NotFound:
        view = None
    if view is None:
        raise NotFound("no lead has that email")
    await audit_read(services, key, "lead.read", view.id, via="lookup")
    return json_response(view)


async def detail(request: Request) -> Response:
    key = await require(request, "read")
    services = services_of(request)
    scope = scope_of(key)
    lead = await root_lead(services, request.path_params["lead_id"], scope)
    view = await detail_view(services, lead, scope)
    await audit_read(services, key, "lead.read", lead.id, via="detail")
    return json_response(view)


async def detail_view(
    services: Services, lead: LeadRow, scope: SiteScope = EVERY_SITE
) -> answers.LeadDetail:
    """The lead as ``scope`` sees it: its browsers and consent on the allowed sites, the
    merged leads that are themselves on one."""
    fields = await lead_fields(services, lead, scope)
    family = await _family(services, lead, scope)
    links = scope.only(await services.store.links_of_leads(family))
    keys = site_keys(services)
    visitors = [link_view(link, keys) for link in links]
    states = []
    for link in links:
        site = services.sites.by_id(link.site_id)
        state = await services.store.consent_state(link.site_id, link.vid)
        if site is not None:
            current = consent.effective(site.consent_mode, state)
            states.append(answers.LeadConsent(link.vid, site.key, current.analytics,
                                              current.marketing, current.gpc,
                                              current.receipt_id or None))  # fmt: skip
    merged = [lead_id for lead_id in family if lead_id != lead.id]
    return answers.LeadDetail(**fields, visitors=visitors, merged_leads=merged, consent=states)


async def timeline(request: Request) -> Response:
    """Every event of every linked visitor within its link's time range, the
    identifications, merges and consent changes, in time order."""
    key = await require(request, "read")
    services = services_of(request)
    limit = int_param(request, "limit", 10_000, TimelineLimit)
    scope = scope_of(key)
    lead = await root_lead(services, request.path_params["lead_id"], scope)
    items, events = await timeline_items(services, lead, limit=limit, scope=scope)
    await audit_read(services, key, "lead.timeline", lead.id, events=events)
    return json_response(answers.Timeline(lead.id, items, events >= limit))


async def timeline_items(
    services: Services, lead: LeadRow, *, limit: int, scope: SiteScope = EVERY_SITE
) -> tuple[list[answers.TimelineItem], int]:
    """The lead's timeline items in order, and how many events it holds (the console
    shows the same timeline): of a limited ``scope``, what happened on its sites."""
    family = await _family(services, lead, scope)
    links = await services.store.links_of_leads(family)
    rows = await services.store.shown_events(links, limit=limit, sites=scope.ids)
    keys = site_keys(services)
    events = [event_item(row, keys) for row in rows]  # in time order
    others: list[answers.TimelineItem] = [
        answers.IdentifiedItem(**msgspec.structs.asdict(link_view(link, keys)), at=link.began_at)
        for link in scope.only(links)
    ]
    others += [item for m in await _merges(services, family, scope) for item in merge_items(m)]
    receipts = await services.store.consent_receipts_of([link.vid for link in links])
    others += [receipt_item(r, keys) for r in scope.only(receipts) if _covered(r, links)]
    others += await _submission_items(services, family, keys, scope)
    return _in_order(events, others), len(events)


def _in_order(
    events: list[answers.EventItem], others: list[answers.TimelineItem]
) -> list[answers.TimelineItem]:
    """``events`` (in time order) and ``others`` (a few) as one list by (time, kind): the
    others are sorted and put in their places, not the thousands of events sorted again."""
    others.sort(key=_order)
    merged: list[answers.TimelineItem] = []
    start = 0
    for item in others:
        kind = _KIND_ORDER[type(item)]
        place = (bisect_left if kind < _EVENT_ORDER else bisect_right)(
            events, item.at, lo=start, key=_at
        )
        merged += events[start:place]
        merged.append(item)
        start = place
    merged += events[start:]
    return merged


def _order(item: answers.TimelineItem) -> tuple[int, int]:
    return item.at, _KIND_ORDER[type(item)]


def _at(item: answers.EventItem) -> int:
    return item.at


async def _family(services: Services, lead: LeadRow, scope: SiteScope) -> list[str]:
    """The lead and the leads merged into it, of those the scope sees (a lead merged in
    from another site only stays the limited reader's business through this one)."""
    family = await services.store.lead_family(lead.id)
    if not scope.limited:
        return family
    seen = await visible_leads(services.store, scope, family)
    return [lead_id for lead_id in family if lead_id == lead.id or lead_id in seen]


async def _merges(services: Services, family: list[str], scope: SiteScope) -> list[Merge]:
    """The merges of these leads, of a limited scope those between leads it sees."""
    merges = await services.store.merges_of(family)
    if not scope.limited:
        return merges
    others = {i for m in merges for i in (m.into_lead, m.from_lead)} - set(family)
    seen = set(family) | await visible_leads(services.store, scope, sorted(others))
    return [m for m in merges if m.into_lead in seen and m.from_lead in seen]


async def _submission_items(
    services: Services, family: list[str], keys: dict[int, str], scope: SiteScope
) -> list[answers.SubmissionItem]:
    """What each unsigned form submission claimed: kept beside the lead, not over it."""
    records = scope.only(await services.store.submissions_of(family))
    owners = {sub.lead_id for sub in records}
    leads = [row for lead_id in owners if (row := await services.store.lead(lead_id))]
    opened = await services.personal.open_submissions(leads, records)
    views = [submission_view(sub, claim, keys) for sub, claim in opened]
    return [msgspec.convert(view, answers.SubmissionItem) for view in views]


def _covered(receipt: ConsentReceipt, links: list[Link]) -> bool:
    """A receipt belongs to this person's timeline only within a link's time range (on a
    shared browser, the earlier person's consent decisions are theirs)."""
    return any(
        k.vid == receipt.vid and k.valid_from <= receipt.at < (k.ended_at or 2**62) for k in links
    )


_KIND_ORDER: dict[type[answers.TimelineItem], int] = {
    answers.ConsentItem: 0, answers.EventItem: 1, answers.SubmissionItem: 2,
    answers.IdentifiedItem: 3, answers.MergeItem: 4, answers.UnmergeItem: 5,
}  # fmt: skip
"""Of items at the same millisecond: consent first (it allowed what follows)."""
_EVENT_ORDER = _KIND_ORDER[answers.EventItem]


def merge_items(merge: Merge) -> list[answers.MergeItem]:
    ids = (merge.id, merge.into_lead, merge.from_lead)
    items = [answers.MergeItem(merge.at, *ids, merge.actor, merge.reason)]
    if merge.undone_at is not None:
        items.append(answers.UnmergeItem(merge.undone_at, *ids, merge.undone_by,
                                         merge.undo_reason))  # fmt: skip
    return items


def receipt_item(receipt: ConsentReceipt, keys: dict[int, str]) -> answers.ConsentItem:
    return answers.ConsentItem(receipt.at, receipt.id, receipt.vid, keys.get(receipt.site_id),
                               receipt.analytics, receipt.marketing, receipt.policy_version,
                               receipt.source)  # fmt: skip


async def merge(request: Request) -> Response:
    """Merge ``other`` into this lead: recorded (who, when, why) and reversible."""
    key = await require(request, "admin")
    services = services_of(request)
    body = await read_body(request, MergeBody)
    into = await root_lead(services, request.path_params["lead_id"], scope_of(key))
    other_id, reason = body.other.strip(), body.reason.strip()
    if not LEAD_ID.fullmatch(other_id) or await services.store.lead(other_id) is None:
        raise NotFound("lead not found")  # malformed or unknown alike
    record = Merge("mg_" + secrets.token_hex(12), into.id, other_id, key.id, reason, now_ms())
    await services.store.merge_leads(record, merging.Rules())
    await audit_read(services, key, "lead.merge", record.id, into=into.id, merged=other_id)
    return json_response(merge_view(record), 201)


async def unmerge(request: Request) -> Response:
    """Undo the open merge of ``other`` into this lead, exactly."""
    key = await require(request, "admin")
    services = services_of(request)
    body = await read_body(request, MergeBody)
    pair = (request.path_params["lead_id"], body.other.strip())
    found = await services.store.open_merge(*pair) if all(map(LEAD_ID.fullmatch, pair)) else None
    if found is None:
        raise NotFound("merge not found")
    reason = body.reason.strip()
    record = await services.store.unmerge_leads(found.id, actor=key.id, reason=reason,
                                                at=now_ms(), rules=merging.Rules())  # fmt: skip
    await audit_read(services, key, "lead.unmerge", record.id, into=record.into_lead,
                     unmerged=record.from_lead)  # fmt: skip
    return json_response(merge_view(record))


def merge_view(record: Merge) -> answers.MergeRecord:
    return answers.MergeRecord(record.id, record.into_lead, record.from_lead, record.actor,
                               record.reason, record.at, record.undone_at, record.undone_by,
                               record.undo_reason)  # fmt: skip
