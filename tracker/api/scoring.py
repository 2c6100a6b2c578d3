"""Scoring over the API: a site's rules (versioned), a lead's score and ledger, manual
adjustments, and the leads listed by grade and score."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from scoring.document import Document
from scoring.grades import Grading
from scoring.handover import hot_list
from tracker.api import answers
from tracker.api.auth import require, scope_of
from tracker.api.bodies import AdjustBody, decode_body, raw_body, read_body
from tracker.api.common import (
    audit_read,
    int_param,
    json_response,
    lead_fields,
    now_ms,
    query_param,
    root_lead,
    services_of,
)
from tracker.api.fields import SITE_KEY, Grade, LeadsPageSize, Millis, ScoreSort
from tracker.errors import NotFound
from tracker.http_errors import BadRequest
from tracker.scope import EVERY_SITE, SiteScope
from tracker.services import Services
from tracker.storage.records import ScoreEntry, Site


async def _site(
    services: Services, request: Request, *, required: bool, scope: SiteScope
) -> Site | None:
    """The ``site`` parameter's site; another site than the key's is unknown (404)."""
    key = query_param(request, "site")
    if key is None:
        if required:
            raise BadRequest("site is required (a site key)")
        return None
    if not SITE_KEY.fullmatch(key):
        raise BadRequest("site must be a site key")
    site = (await services.sites.snapshot(wanted=[key])).get(key)
    if site is None or not scope.allows(site.id):
        raise NotFound("unknown site")
    return site


async def rules(request: Request) -> Response:
    """GET: the site's current rules; PUT: new rules (a new version)."""
    key = await require(request, "read" if request.method == "GET" else "admin")
    services = services_of(request)
    site = await _site(services, request, required=True, scope=scope_of(key))
    assert site is not None
    if request.method == "PUT":
        doc = _decode(await raw_body(request))
        version = await services.parts.scoring.put_rules(site.id, doc, actor=f"apikey:{key.id}")
        await audit_read(services, key, "scoring.rules", site.key, version=version)
    info = await services.parts.scoring.rules(site.id)
    if info is None:
        raise NotFound("the site has no scoring rules")
    document = msgspec.to_builtins(info.rules.doc)
    return json_response(answers.ScoringRules(site.key, info.rules.version, document, info.actor,
                                              info.created_at))  # fmt: skip


def _decode(body: bytes) -> Document:
    """Checked as every body is (``bodies.decode_body``: a 400 naming the key)."""
    return decode_body(body, Document)


async def lead_score(request: Request) -> Response:
    """GET: the lead's score, grade and ledger; POST: a manual adjustment (admin)."""
    key = await require(request, "read" if request.method == "GET" else "admin")
    services = services_of(request)
    scope = scope_of(key)
    lead = await root_lead(services, request.path_params["lead_id"], scope)
    if request.method == "POST":
        body = await read_body(request, AdjustBody)
        site = (await services.sites.snapshot(wanted=[body.site])).get(body.site)
        if site is None:
            raise NotFound("unknown site")
        await services.parts.scoring.adjust(lead.id, site.id, points=int(body.points),
                                            reason=body.reason, actor=f"apikey:{key.id}",
                                            axis=body.axis)  # fmt: skip
        await audit_read(services, key, "score.adjust", lead.id, points=int(body.points))
        site_id: int | None = site.id
    else:
        chosen = await _site(services, request, required=False, scope=scope)
        site_id = None if chosen is None else chosen.id
        await audit_read(services, key, "score.read", lead.id)
    answer = await score_view(services, lead.id, site_id, scope)
    return json_response(answer, 201 if request.method == "POST" else 200)


async def score_view(
    services: Services, lead_id: str, site_id: int | None, scope: SiteScope = EVERY_SITE
) -> answers.LeadScore:
    """The lead's score on ``site_id``, or where it scores highest (of the scope's sites)."""
    if site_id is None and scope.limited:
        site_id = await _best_site(services, lead_id, scope)
    found = await services.store.lead_score(lead_id, site_id)
    if found is None:
        raise NotFound("lead not found")
    now = now_ms()
    info = await services.parts.scoring.rules(found.site_id) if found.site_id else None
    grading = info.rules.grading if info is not None else Grading.of(Document())
    standing = grading.standing(found.entries, now)
    site = services.sites.by_id(found.site_id)
    ledger = [_entry(e, grading, now) for e in found.entries]
    return answers.LeadScore(found.lead_id, site.key if site else None, standing.score,
                             standing.grade, standing.fit, standing.fit_grade,
                             info.rules.version if info else None, now, ledger)  # fmt: skip


async def _best_site(services: Services, lead_id: str, scope: SiteScope) -> int:
    """Of the allowed sites, the one the lead scores highest on (else the first allowed
    site the lead is on: never a site outside the scope)."""
    root = await services.store.resolve_lead(lead_id) or lead_id
    states = scope.only(await services.store.score_states([root]))
    if states:
        return max(states, key=lambda s: (s.score, -s.site_id)).site_id
    on = (await services.store.lead_sites([root])).get(root, frozenset())
    return min((s for s in on if scope.allows(s)), default=min(scope.sites or {0}))


def _entry(e: ScoreEntry, grading: Grading, now: int) -> answers.LedgerEntry:
    counts = grading.decay(e.points, e.at, now) if e.axis == "engagement" else float(e.points)
    event = e.source if e.kind == "event" else None
    return answers.LedgerEntry(e.rule, e.points, round(counts, 6), e.at, event, e.reason,
                               e.axis, e.kind, e.version, e.actor, e.object,
                               e.lead_id)  # fmt: skip


async def scored_leads(request: Request, key: Any) -> Response:
    """``GET /api/v1/leads?grade=hot&sort=-score``: by grade now (decay applied)."""
    services = services_of(request)
    grade = query_param(request, "grade")
    sort = query_param(request, "sort")
    grade, sort = "hot" if grade is None else grade, "-score" if sort is None else sort
    int_param(request, "updated_since", 0, Millis)  # checked as without grade; unused
    if grade not in get_args(Grade):
        raise BadRequest("grade must be hot, warm or cool")
    if sort not in get_args(ScoreSort):
        raise BadRequest("sort must be -score or score")
    limit = int_param(request, "limit", 100, LeadsPageSize)
    scope = scope_of(key)
    site = await _site(services, request, required=False, scope=scope)
    found = await hot_list(services.parts.scoring, site_id=None if site is None else site.id,
                           grade=grade, limit=limit, now=now_ms(),
                           allowed=scope.sites)  # fmt: skip
    if sort == "score":
        found.reverse()
    leads, standings = [], []
    for item in found:
        row = await services.store.lead(item.lead_id)
        if row is None:
            continue
        try:
            leads.append(answers.Lead(**await lead_fields(services, row, scope)))
        except NotFound:
            continue  # erased meanwhile
        site_row = services.sites.by_id(item.site_id)
        standings.append(answers.LeadStanding(item.lead_id, site_row.key if site_row else "",
                                              item.score, item.grade,
                                              item.fit, item.fit_grade))  # fmt: skip
    await audit_read(services, key, "leads.list", "*", grade=grade, leads=[x.id for x in leads])
    return json_response(answers.LeadsPage(leads, None, standings))
