"""名寄せ: suggested duplicate pairs, and marking a pair "not the same".

Pairs name lead ids and the kinds of keys that matched, never the values; merging one
goes through the existing (recorded, reversible) ``POST /api/v1/leads/{id}/merge``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from identity.duplicates import Confidence, Suggestion
from tracker.api import answers
from tracker.api.auth import require, scope_of
from tracker.api.bodies import DismissBody, read_body
from tracker.api.common import (
    audit_read,
    decode_cursor,
    encode_cursor,
    int_param,
    json_response,
    query_param,
    services_of,
)
from tracker.api.fields import CONFIDENCE_LEVELS, LEAD_ID, DuplicatesPageSize
from tracker.errors import NotFound
from tracker.http_errors import BadRequest
from tracker.scope import SiteScope, visible_leads
from tracker.services import Services


def pair_view(s: Suggestion) -> answers.DuplicatePair:
    return answers.DuplicatePair(s.lead, s.other, s.confidence.value, list(s.matched),
                                 list(s.differs))  # fmt: skip


def _position(s: Suggestion) -> tuple[int, str, str]:
    return s.confidence.rank, s.lead, s.other


async def listing(request: Request) -> Response:
    """Every suggested pair at least as sure as ``confidence``, most certain first."""
    key = await require(request, "read")
    services = services_of(request)
    level = query_param(request, "confidence") or "possible"
    if level not in CONFIDENCE_LEVELS:
        raise BadRequest(f"confidence must be one of {', '.join(CONFIDENCE_LEVELS)}")
    limit = int_param(request, "limit", 100, DuplicatesPageSize)
    cursor = query_param(request, "cursor")
    after = _after(cursor) if cursor else None
    found = await services.parts.matching.suggestions(least=Confidence(level))
    rest = [s for s in found if after is None or _position(s) > after]
    page = await visible_pairs(services, scope_of(key), rest, limit)
    more = len(page) == limit and _position(page[-1]) < _position(found[-1])
    next_cursor = encode_cursor(*_position(page[-1])) if more else None
    pending = await services.parts.matching.pending()
    await audit_read(services, key, "duplicates.list", "*", pairs=len(page))
    return json_response(answers.DuplicatesPage([pair_view(s) for s in page], next_cursor,
                                                pending))  # fmt: skip


PAIRS_CHECKED = 200
"""Suggestions checked at a time for a limited key (whose leads are on its sites)."""


async def visible_pairs(
    services: Services, scope: SiteScope, found: list[Suggestion], limit: int
) -> list[Suggestion]:
    """The first ``limit`` pairs whose two leads the scope sees, in order."""
    if not scope.limited:
        return found[:limit]
    page: list[Suggestion] = []
    for start in range(0, len(found), PAIRS_CHECKED):
        chunk = found[start : start + PAIRS_CHECKED]
        ids = sorted({i for s in chunk for i in (s.lead, s.other)})
        seen = await visible_leads(services.store, scope, ids)
        page += [s for s in chunk if s.lead in seen and s.other in seen]
        if len(page) >= limit:
            break
    return page[:limit]


def _after(cursor: str) -> tuple[int, str, str]:
    rank, lead, other = decode_cursor(cursor, 3)
    valid = (
        isinstance(rank, int)
        and not isinstance(rank, bool)
        and 0 <= rank < len(Confidence)
        and all(isinstance(x, str) and LEAD_ID.fullmatch(x) for x in (lead, other))
    )
    if not valid:
        raise BadRequest("cursor is not one this API gave out")
    return rank, lead, other


async def dismiss(request: Request) -> Response:
    """The pair (as the leads stand now, after merges) is never suggested again."""
    key = await require(request, "admin")
    services = services_of(request)
    body = await read_body(request, DismissBody)
    ids = (body.lead.strip(), body.other.strip())
    if not all(LEAD_ID.fullmatch(i) for i in ids):
        raise NotFound("lead not found")  # malformed or unknown alike
    actor = f"apikey:{key.id}"
    lead, other, at = await services.parts.matching.dismiss(*ids, actor=actor)
    await audit_read(services, key, "duplicates.dismiss", lead, other=other)
    return json_response(answers.Dismissal(lead, other, actor, at), 201)
