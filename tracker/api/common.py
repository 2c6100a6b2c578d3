"""What the API resources share: JSON out, query parameters, cursors, lead views."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Collection, Sequence
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from privacy.crypto.primitives import InvalidCiphertext
from tracker.api import answers
from tracker.api.bodies import NUL_REFUSED
from tracker.api.fields import LEAD_ID, bounds
from tracker.errors import NotFound
from tracker.http_errors import BadRequest
from tracker.scope import EVERY_SITE, SiteScope, sees_lead, touches
from tracker.services import Services
from tracker.storage.records import ApiKey, Event, LeadRow, Link

_INTEGER = re.compile(r"-?[0-9]{1,19}")
"""ASCII digits only: ``str.isdigit`` also takes '²' and '١', which ``int`` refuses or reads."""
MAX_CURSOR = 512


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def json_response(answer: msgspec.Struct, status: int = 200) -> Response:
    return Response(msgspec.json.encode(answer), status, media_type="application/json")


async def audit_read(
    services: Services, key: ApiKey, action: str, subject: str, **detail: Any
) -> None:
    """Every API read of personal data, and every consent or identity administration,
    leaves an audit row: who, what, ids only."""
    await services.audit.record(f"apikey:{key.id}", action, subject, detail)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def query_param(request: Request, name: str) -> str | None:
    """One query parameter; given twice it is ambiguous, so refused rather than guessed."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} must be given at most once")
    if values and "\x00" in values[0]:
        raise BadRequest(NUL_REFUSED)
    return values[0] if values else None


def int_param(request: Request, name: str, default: int, number: Any) -> int:
    """An integer query parameter within the bounds its type (``fields``) declares."""
    raw = query_param(request, name)
    if raw is None:
        return default
    low, high = bounds(number)
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    if len(cursor) > MAX_CURSOR:
        raise BadRequest("cursor is not one this API gave out")
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadRequest("cursor is not one this API gave out") from None
    if not isinstance(parts, list) or len(parts) != arity:
        raise BadRequest("cursor is not one this API gave out")
    return parts


async def root_lead(services: Services, lead_id: str, scope: SiteScope) -> LeadRow:
    """The lead for ``lead_id`` after merges; 404 alike for malformed and unknown ids and
    for a lead the scope does not see (no existence oracle)."""
    if not LEAD_ID.fullmatch(lead_id):
        raise NotFound("lead not found")
    root = await services.store.resolve_lead(lead_id)
    lead = await services.store.lead(root) if root else None
    if lead is None or not await sees_lead(services.store, scope, lead.id):
        raise NotFound("lead not found")
    return lead


async def lead_fields(
    services: Services, lead: LeadRow, scope: SiteScope = EVERY_SITE, *,
    on: Collection[int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The lead's fields with decrypted traits (for ``answers.Lead`` and ``LeadDetail``),
    its touches as the scope sees them (``on``: the lead's sites, if already read); an
    erased lead's leftovers read as not found."""
    try:
        person = await services.personal.read(lead)
    except InvalidCiphertext:
        raise NotFound("lead not found") from None
    first, last = await touches(services.store, scope, lead, on)
    return {
        "id": lead.id,
        **person.as_dict(),
        "first_touch": first,
        "last_touch": last,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
    }


def link_view(link: Link, site_keys: dict[int, str]) -> answers.VisitorLink:
    site = site_keys.get(link.site_id)
    return answers.VisitorLink(link.vid, site, link.evidence, link.began_at, link.valid_from,
                               link.ended_at, link.lead_id)  # fmt: skip


def event_view(event: Event, site_keys: dict[int, str]) -> answers.EventItem:
    """Fields the event does not have (None, or empty) are left out of the answer."""
    e = event
    utm = _utm(e.utm_source, e.utm_medium, e.utm_campaign, e.utm_term, e.utm_content)
    return answers.EventItem(
        e.type, e.at, e.vid, e.sid, site_keys.get(e.site_id), e.url, e.referrer, e.title,
        e.name, e.props or None, utm, e.click_ids or None, e.browser, e.os, e.device,
    )  # fmt: skip


def event_item(row: Sequence[Any], site_keys: dict[int, str]) -> answers.EventItem:
    """``event_view`` of a stored row of ``SHOWN_EVENT_COLUMNS`` (``store.shown_events``),
    without an ``Event`` between: a timeline makes 10,000 of these."""
    (_, at, site_id, type_, vid, sid, url, referrer, title, name, props, source, medium,
     campaign, term, content, click_ids, browser, os_, device) = row  # fmt: skip
    return answers.EventItem(
        type_, at, vid, sid, site_keys.get(site_id), url, referrer, title, name,
        orjson.loads(props) or None if props else None,
        _utm(source, medium, campaign, term, content),
        orjson.loads(click_ids) or None if click_ids else None, browser, os_, device,
    )  # fmt: skip


def _utm(
    source: str | None, medium: str | None, campaign: str | None, term: str | None,
    content: str | None,
) -> dict[str, str]:  # fmt: skip
    """The UTM values an event has (a timeline makes 10,000 of these: plain tests)."""
    utm = {}
    if source:
        utm["source"] = source
    if medium:
        utm["medium"] = medium
    if campaign:
        utm["campaign"] = campaign
    if term:
        utm["term"] = term
    if content:
        utm["content"] = content
    return utm


def site_keys(services: Services) -> dict[int, str]:
    return {site.id: key for key, site in services.sites.current().items()}


def ids(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))
