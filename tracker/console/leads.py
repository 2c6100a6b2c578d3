"""Marketing's lead lists: every lead (search by email, company, grade, site), the hot
leads for the hand-over to sales (with the same CSV as ``ashiato leads hot --csv``),
and the 名寄せ queue (pairs with their reasons: merge, or "not the same").

Searching by email uses the blind index and by company the 名寄せ company key, so no
trait is ever decrypted to search; each listing's decrypted traits are audited.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from identity import merging
from identity.duplicates import Confidence, Suggestion
from identity.matchkeys import Kind, company_key
from scoring.document import Document
from scoring.grades import Grading
from scoring.handover import Listed, csv_row, hot_list, to_csv
from tracker.api.common import lead_fields
from tracker.api.duplicates import visible_pairs
from tracker.api.fields import LEAD_ID
from tracker.beacon import is_email_address
from tracker.console.web import Console, page
from tracker.errors import Invalid, NotFound
from tracker.scope import SiteScope, visible_leads
from tracker.storage.records import LeadRow, Merge, ScoreState, Site

SHOWN = 100
HOT_SHOWN = 500
PAIRS_SHOWN = 200
MAX_QUERY = 254
GRADES = ("hot", "warm", "cool")
ROLES = ("marketing", "admin")
DEFAULT_GRADING = Grading.of(Document())


@dataclass(frozen=True, slots=True)
class Row:
    """One listed lead: decrypted traits, its standing now, and when last seen."""

    id: str
    person: dict[str, Any]
    site: Site | None
    score: float | None
    grade: str | None
    fit_grade: str | None
    last_seen: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Search:
    q: str
    grade: str
    site: Site | None
    before: tuple[int, str] | None = None
    """Where the page of the latest changed leads starts (from its "older" link)."""

    @classmethod
    def of(cls, console: Console) -> Search:
        query = console.request.query_params
        q = query.get("q", "").strip()[:MAX_QUERY]
        grade = query.get("grade", "")
        site = next((s for s in allowed_sites(console) if s.key == query.get("site")), None)
        return cls(q, grade if grade in GRADES else "", site, _position(query.get("before")))

    def older(self, at: int, lead_id: str) -> str:
        """The address of the next page of leads, older than (``at``, ``lead_id``)."""
        params = {"site": self.site.key if self.site else "", "before": f"{at}_{lead_id}"}
        return "/admin/leads?" + urlencode({k: v for k, v in params.items() if v})

    def sites(self, console: Console) -> list[int] | None:
        """The site ids searched: the one chosen, else the user's (None: every site)."""
        return [self.site.id] if self.site else console.scope.ids


def _position(text: str | None) -> tuple[int, str] | None:
    """``ms_leadid`` as an "older" link wrote it; anything else: the first page."""
    at, _, lead_id = (text or "").partition("_")
    if not (at.isascii() and at.isdigit() and len(at) < 16 and LEAD_ID.fullmatch(lead_id)):
        return None
    return int(at), lead_id


def allowed_sites(console: Console) -> list[Site]:
    """The sites this user sees (a site-limited user: theirs), by name."""
    found = console.services.sites.current().values()
    return sorted((s for s in found if console.scope.allows(s.id)), key=lambda s: s.name)


async def standing(console: Console, states: list[ScoreState]) -> dict[str, Listed]:
    """Each lead's score and grade now (decay applied), where it scores highest."""
    rules = await console.services.parts.scoring.refresh()
    now, best = console.clock.now_ms, dict[str, Listed]()
    for state in states:
        info = rules.get(state.site_id)
        g = info.rules.grading if info is not None else DEFAULT_GRADING
        score = round(g.decay(state.score, state.at, now), 1)
        listed = Listed(state.lead_id, state.site_id, score, g.grade(score), state.fit,
                        g.fit_grade(state.fit))  # fmt: skip
        if state.lead_id not in best or best[state.lead_id].score < score:
            best[state.lead_id] = listed
    return best


async def rows_of(console: Console, leads: list[LeadRow]) -> list[Row]:
    store, services = console.services.store, console.services
    ids = [lead.id for lead in leads]
    scores = await standing(console, console.scope.only(await store.score_states(ids)))
    seen = await store.last_seen(ids, sites=console.scope.ids)
    found = []
    for lead in leads:
        try:
            person = await lead_fields(services, lead, console.scope)
        except NotFound:
            continue  # an erased lead's leftovers
        s = scores.get(lead.id)
        site = services.sites.by_id(s.site_id) if s else None
        found.append(Row(lead.id, person, site, s.score if s else None, s.grade if s else None,
                         s.fit_grade if s else None, seen.get(lead.id),
                         lead.created_at))  # fmt: skip
    return found


async def found_leads(console: Console, search: Search) -> list[LeadRow]:
    """The leads a search names (of those the user sees): by email (blind index),
    company (match key), or the latest changed; a grade is applied after (on the
    standing now)."""
    found = await _search(console, search)
    ids = [r.id for r in found]
    seen = await visible_leads(console.services.store, console.scope, ids)
    if search.site is not None:  # of the leads on the chosen site
        seen &= await visible_leads(console.services.store, SiteScope.of([search.site.id]), ids)
    return [lead for lead in found if lead.id in seen]


async def _search(console: Console, search: Search) -> list[LeadRow]:
    store, services = console.services.store, console.services
    site_id = search.site.id if search.site else None
    if not search.q:
        if search.grade:
            listed = await hot_list(services.parts.scoring, site_id=site_id, grade=search.grade,
                                    limit=SHOWN, now=console.clock.now_ms,
                                    allowed=console.scope.sites)  # fmt: skip
            return [lead for i in listed if (lead := await store.lead(i.lead_id))]
        return await store.recent_leads(sites=search.sites(console), before=search.before,
                                        limit=SHOWN)  # fmt: skip
    if "@" in search.q:
        if not is_email_address(search.q):
            raise Invalid("that is not an email address (name@domain)")
        ids = []
        if (lead := await store.lead_by_index(services.personal.email_index(search.q))) is not None:
            ids = [lead.id]
    else:
        key = company_key(search.q)
        index = services.personal.match_index(Kind.COMPANY.value, key) if key else None
        ids = await store.leads_with_key(Kind.COMPANY.value, index, limit=SHOWN) if index else []
    roots = dict.fromkeys([r for i in ids if (r := await store.resolve_lead(i))])
    return [lead for r in roots if (lead := await store.lead(r))]


@page(*ROLES)
async def leads_page(console: Console) -> Response:
    search = Search.of(console)
    found = await found_leads(console, search)
    rows = await rows_of(console, found)
    if search.grade:
        rows = [r for r in rows if r.grade == search.grade]
    paged = not (search.q or search.grade) and len(found) == SHOWN
    older = search.older(found[-1].updated_at, found[-1].id) if paged else None
    await console.audit(
        "console.leads.list",
        "*",
        leads=[r.id for r in rows],
        search="email" if "@" in search.q else ("company" if search.q else ""),
    )
    return console.render("leads.html", rows=rows, search=search, grades=GRADES,
                          sites=allowed_sites(console), older=older)  # fmt: skip


async def hot_rows(console: Console, site: Site | None) -> list[tuple[Listed, LeadRow]]:
    services = console.services
    listed = await hot_list(services.parts.scoring, site_id=site.id if site else None,
                            grade="hot", limit=HOT_SHOWN, now=console.clock.now_ms,
                            allowed=console.scope.sites)  # fmt: skip
    found = [(i, lead) for i in listed if (lead := await services.store.lead(i.lead_id))]
    seen = await visible_leads(services.store, console.scope, [lead.id for _, lead in found])
    return [(i, lead) for i, lead in found if lead.id in seen]


@page(*ROLES)
async def hot_page(console: Console) -> Response:
    """The hand-over list: hot leads by score, with their first and last touch."""
    search = Search.of(console)
    found = await hot_rows(console, search.site)
    rows = await rows_of(console, [lead for _, lead in found])
    await console.audit("console.leads.hot", "*", leads=[r.id for r in rows])
    touches = {r.id: (r.person["first_touch"], r.person["last_touch"]) for r in rows}
    return console.render("hot.html", rows=rows, touches=touches, search=search,
                          sites=allowed_sites(console))  # fmt: skip


@page(*ROLES)
async def hot_csv(console: Console) -> Response:
    """The same CSV as ``ashiato leads hot --csv``: UTF-8 with a BOM, formula-safe."""
    search = Search.of(console)
    keys = {s.id: s.key for s in console.services.sites.current().values()}
    rows = []
    for item, lead in await hot_rows(console, search.site):
        try:
            person = await lead_fields(console.services, lead, console.scope)
        except NotFound:
            continue
        seen = replace(lead, first_touch=person["first_touch"], last_touch=person["last_touch"])
        rows.append(csv_row(item, keys.get(item.site_id, ""), person, seen))
    await console.audit("console.leads.hot.csv", "*", leads=[r[0] for r in rows])
    stamp = console.clock.iso(console.clock.now_ms)[:10]
    return Response(to_csv(rows), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="ashiato-hot-leads-{stamp}.csv"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pair:
    suggestion: Suggestion
    lead: dict[str, Any]
    other: dict[str, Any]


@page(*ROLES)
async def duplicates_page(console: Console) -> Response:
    """名寄せ: pairs that are probably one person, most certain first."""
    services = console.services
    level = console.request.query_params.get("confidence", "possible")
    least = Confidence(level) if level in {c.value for c in Confidence} else Confidence.POSSIBLE
    every = await services.parts.matching.suggestions(least=least)
    found = await visible_pairs(services, console.scope, every, PAIRS_SHOWN)
    pairs = []
    for s in found:
        rows = [await services.store.lead(i) for i in (s.lead, s.other)]
        try:
            people = [await lead_fields(services, r, console.scope) for r in rows if r]
        except NotFound:
            continue
        if len(people) == 2:
            pairs.append(Pair(s, *people))
    await console.audit("console.duplicates.list", "*",
                        leads=sorted({i for p in found for i in (p.lead, p.other)}))  # fmt: skip
    return console.render("duplicates.html", pairs=pairs, least=least.value,
                          levels=[c.value for c in Confidence],
                          pending=await services.parts.matching.pending())  # fmt: skip


async def _pair(console: Console) -> tuple[str, str]:
    """Two lead ids from the form, both of leads this user sees (else not found)."""
    lead, other = console.form.get("lead").strip(), console.form.get("other").strip()
    if not (LEAD_ID.fullmatch(lead) and LEAD_ID.fullmatch(other)):
        raise NotFound("lead not found")
    roots = [await console.services.store.resolve_lead(i) for i in (lead, other)]
    seen = await visible_leads(console.services.store, console.scope, [r for r in roots if r])
    if not all(r in seen for r in roots):
        raise NotFound("lead not found")
    return lead, other


@page(*ROLES)
async def duplicates_action(console: Console) -> Response:
    """Merge the pair (the newer lead into the older: recorded, reversible), or mark it
    as two people (never suggested again)."""
    lead, other = await _pair(console)
    if console.request.path_params["action"] == "merge":
        await merge_into(console, lead, other, console.form.get("reason") or "名寄せ")
    elif console.request.path_params["action"] == "not-same":
        lead, other, _ = await console.services.parts.matching.dismiss(
            lead, other, actor=console.actor
        )
        await console.audit("duplicates.dismiss", lead, other=other)
    else:
        raise NotFound("no such action")
    return RedirectResponse("/admin/duplicates", 303)


async def merge_into(console: Console, into: str, other: str, reason: str) -> Merge:
    """The API's merge (``POST /api/v1/leads/{id}/merge``), by a console user."""
    store = console.services.store
    if await store.lead(other) is None or await store.lead(into) is None:
        raise NotFound("lead not found")
    if len(await visible_leads(store, console.scope, [into, other])) < 2:
        raise NotFound("lead not found")
    record = Merge("mg_" + secrets.token_hex(12), into, other, console.actor,
                   reason.strip()[:500], console.clock.now_ms)  # fmt: skip
    await store.merge_leads(record, merging.Rules())
    await console.audit("lead.merge", record.id, into=into, merged=other)
    return record
