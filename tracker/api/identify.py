"""Server-side identification and consent, from the site's own backend (trusted)."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from identity.service import Identified
from tracker.api.auth import require
from tracker.api.common import (
    SITE_KEY,
    VISITOR_ID,
    audit_read,
    json_body,
    json_response,
    now_ms,
    services_of,
)
from tracker.beacon import Beacon, validate
from tracker.errors import BadRequest, Conflict, NotFound
from tracker.services import Services
from tracker.storage.records import ConsentReceipt, Site


async def _site_and_visitor(services: Services, data: dict[str, Any]) -> tuple[Site, str]:
    site_key, vid = data.get("site"), data.get("vid")
    if not isinstance(site_key, str) or not SITE_KEY.fullmatch(site_key):
        raise BadRequest("site must be a site key")
    if not isinstance(vid, str) or not VISITOR_ID.fullmatch(vid):
        raise BadRequest("vid must be the visitor id (32 lowercase hex)")
    site = (await services.sites.snapshot(wanted=[site_key])).get(site_key)
    if site is None:
        raise NotFound("site not found")
    return site, vid


async def consent_api(request: Request) -> Response:
    """Record consent obtained by the site itself (e.g. a checkbox on its own form)."""
    key = await require(request, "identify")
    services = services_of(request)
    data = await json_body(request)
    site, vid = await _site_and_visitor(services, data)
    receipt = await record_consent(services, site, vid, data)
    await audit_read(services, key, "consent.record", receipt.id, visitor=vid)
    return json_response({"consent_id": receipt.id, "at": receipt.at}, 201)


def _checked(raw: dict[str, Any]) -> Beacon:
    """The beacon rules, with messages naming the body's fields (not ``events[0]``)."""
    try:
        return validate(raw)
    except BadRequest as exc:
        raise BadRequest(exc.message.removeprefix("events[0].")) from None


def _check_consent(value: Any) -> None:
    """Exactly the documented shape: a misspelt purpose must not be dropped silently."""
    if (
        not isinstance(value, dict)
        or not value
        or not set(value) <= {"analytics", "marketing"}
        or not all(isinstance(v, bool) for v in value.values())
    ):
        raise BadRequest("consent must hold analytics and/or marketing, each true or false")


async def record_consent(
    services: Services, site: Site, vid: str, data: dict[str, Any]
) -> ConsentReceipt:
    _check_consent(data.get("consent"))
    claim = _checked({"site": site.key, "type": "consent", "vid": vid,
                      "consent": data.get("consent"), "policy": data.get("policy")})  # fmt: skip
    assert claim.consent is not None
    receipt = ConsentReceipt(secrets.token_hex(16), site.id, vid, claim.consent[0],
                             claim.consent[1], claim.policy or site.settings.policy_version,
                             "api", now_ms())  # fmt: skip
    await services.writer.submit([receipt])
    return receipt


async def identify_api(request: Request) -> Response:
    """Link a visitor to a lead (evidence ``api``). Needs the visitor's marketing
    consent: include ``consent`` to record one obtained by the site, else 409."""
    key = await require(request, "identify")
    services = services_of(request)
    data = await json_body(request)
    site, vid = await _site_and_visitor(services, data)
    traits = _checked({"site": site.key, "type": "identify", "vid": vid,
                       "traits": data.get("traits")}).traits  # fmt: skip
    assert traits is not None
    if data.get("consent") is not None:
        await record_consent(services, site, vid, data)
    result = await services.identity.identify(site, vid, traits, evidence="api", at=now_ms())
    if not isinstance(result, Identified):
        raise Conflict("the visitor has not granted marketing consent on this site")
    await audit_read(services, key, "lead.identify", result.lead.id, visitor=vid)
    return json_response({"lead": result.lead.id, "created": result.created,
                          "link": result.outcome.action, "visitor": vid})  # fmt: skip
