"""Server-side identification and consent, from the site's own backend (trusted)."""

from __future__ import annotations

import secrets
from typing import Any

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response

from identity.service import Identified
from tracker.api import answers
from tracker.api.auth import require, scope_of
from tracker.api.bodies import Consent, ConsentBody, IdentifyBody, read_body
from tracker.api.common import audit_read, json_response, now_ms, services_of
from tracker.beacon import Beacon, validate
from tracker.errors import Conflict, NotFound
from tracker.http_errors import BadRequest
from tracker.scope import sees_lead
from tracker.services import Services
from tracker.storage.records import ApiKey, ConsentReceipt, Site


async def _site(services: Services, site_key: str, key: ApiKey) -> Site:
    """The body's site; one outside a limited key's sites is not found, as an unknown."""
    site = (await services.sites.snapshot(wanted=[site_key])).get(site_key)
    if site is None or not scope_of(key).allows(site.id):
        raise NotFound("site not found")
    return site


async def consent_api(request: Request) -> Response:
    """Record consent obtained by the site itself (e.g. a checkbox on its own form)."""
    key = await require(request, "identify")
    services = services_of(request)
    body = await read_body(request, ConsentBody)
    site = await _site(services, body.site, key)
    receipt = await record_consent(services, site, body.vid, body.consent, body.policy)
    await audit_read(services, key, "consent.record", receipt.id, visitor=body.vid)
    return json_response(answers.ConsentRecorded(receipt.id, receipt.at), 201)


def _checked(raw: dict[str, Any]) -> Beacon:
    """The beacon rules, with messages naming the body's fields (not ``events[0]``)."""
    try:
        return validate(raw)
    except BadRequest as exc:
        raise BadRequest(exc.message.removeprefix("events[0].")) from None


async def record_consent(
    services: Services, site: Site, vid: str, consent: Consent, policy: str | None
) -> ConsentReceipt:
    stated = {name: value for name in ("analytics", "marketing")
              if (value := getattr(consent, name)) is not UNSET}  # fmt: skip
    claim = _checked({"site": site.key, "type": "consent", "vid": vid, "consent": stated,
                      "policy": policy})  # fmt: skip
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
    body = await read_body(request, IdentifyBody)
    site, vid = await _site(services, body.site, key), body.vid
    traits = _checked({"site": site.key, "type": "identify", "vid": vid,
                       "traits": body.traits}).traits  # fmt: skip
    assert traits is not None
    if body.consent is not None:
        await record_consent(services, site, vid, body.consent, body.policy)
    hidden = await _unseen_lead(services, key, traits["email"])
    result = await services.identity.identify(site, vid, traits, evidence="api", at=now_ms())
    if not isinstance(result, Identified):
        raise Conflict("the visitor has not granted marketing consent on this site")
    await audit_read(services, key, "lead.identify", result.lead.id, visitor=vid)
    return json_response(answers.Identified(result.lead.id, result.created or hidden,
                                            result.outcome.action, vid))  # fmt: skip


async def _unseen_lead(services: Services, key: ApiKey, email: str) -> bool:
    """Whether the email is a lead the key does not see (only on other sites): to a
    site-limited key that lead is new, so ``created`` does not tell it exists elsewhere."""
    scope = scope_of(key)
    if not scope.limited:
        return False
    found = await services.store.lead_by_index(services.personal.email_index(email))
    root = await services.store.resolve_lead(found.id) if found else None
    return root is not None and not await sees_lead(services.store, scope, root)
