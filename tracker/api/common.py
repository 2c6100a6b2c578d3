"""What the API resources share: JSON in and out, parameters, lead views."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from privacy.crypto.primitives import InvalidCiphertext
from tracker.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from tracker.services import Services
from tracker.storage.records import ApiKey, Event, LeadRow, Link

MAX_JSON_BODY = 65_536
LEAD_ID = re.compile(r"ld_[0-9a-f]{24}")
VISITOR_ID = re.compile(r"[0-9a-f]{32}")
SITE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
HOOK_ID = re.compile(r"wh_[0-9a-f]{24}")
REQUEST_ID = re.compile(r"pr_[0-9a-f]{24}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
"""ASCII digits only: ``str.isdigit`` also takes '²' and '١', which ``int`` refuses or reads."""
MAX_CURSOR = 512


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


async def json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("compressed bodies are not accepted")  # no gzip bombs
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("", "application/json"):
        raise UnsupportedMediaType("send application/json")
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_JSON_BODY:
                raise PayloadTooLarge(f"body larger than {MAX_JSON_BODY} bytes")
    except ClientDisconnect:
        raise BadRequest("client went away") from None  # nobody reads it; no 500 in the log
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    if _holds_nul(data):
        raise BadRequest(NUL_REFUSED)
    return data


NUL_REFUSED = "text must not contain NUL (U+0000) characters"
"""PostgreSQL text cannot hold U+0000 and SQLite's can: refused at the door, so both
backends answer alike and no database error becomes a 500 (or a 503)."""


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


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


def int_param(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = query_param(request, name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def text_field(data: dict[str, Any], name: str, *, limit: int, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"{name} must be a string of 1 to {limit} characters")
    return value.strip()


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


async def root_lead(services: Services, lead_id: str) -> LeadRow:
    """The lead for ``lead_id`` after merges; 404 alike for malformed and unknown ids."""
    if not LEAD_ID.fullmatch(lead_id):
        raise NotFound("lead not found")
    root = await services.store.resolve_lead(lead_id)
    lead = await services.store.lead(root) if root else None
    if lead is None:
        raise NotFound("lead not found")
    return lead


async def lead_view(services: Services, lead: LeadRow) -> dict[str, Any]:
    """The lead with decrypted traits; an erased lead's leftovers read as not found."""
    try:
        person = await services.personal.read(lead)
    except InvalidCiphertext:
        raise NotFound("lead not found") from None
    return {
        "id": lead.id,
        **person.as_dict(),
        "first_touch": lead.first_touch,
        "last_touch": lead.last_touch,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
    }


def link_view(link: Link, site_keys: dict[int, str]) -> dict[str, Any]:
    return {
        "visitor": link.vid,
        "site": site_keys.get(link.site_id),
        "evidence": link.evidence,
        "linked_at": link.began_at,
        "covers_from": link.valid_from,
        "ended_at": link.ended_at,
        "lead": link.lead_id,
    }


def event_view(event: Event, site_keys: dict[int, str]) -> dict[str, Any]:
    view = {
        "kind": "event",
        "type": event.type,
        "at": event.at,
        "visitor": event.vid,
        "session": event.sid,
        "site": site_keys.get(event.site_id),
        "url": event.url,
        "referrer": event.referrer,
        "title": event.title,
        "name": event.name,
        "props": event.props,
        "utm": {
            k: v
            for k, v in (
                ("source", event.utm_source),
                ("medium", event.utm_medium),
                ("campaign", event.utm_campaign),
                ("term", event.utm_term),
                ("content", event.utm_content),
            )
            if v
        },
        "click_ids": event.click_ids,
        "browser": event.browser,
        "os": event.os,
        "device": event.device,
    }
    return {k: v for k, v in view.items() if v not in (None, {})}


def site_keys(services: Services) -> dict[int, str]:
    return {site.id: key for key, site in services.sites.current().items()}


def ids(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))
