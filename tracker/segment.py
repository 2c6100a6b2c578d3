"""``POST /v1/batch``, ``/v1/identify``, ``/v1/track``, ``/v1/page``, ``/v1/screen``,
``/v1/group``, ``/v1/alias``: the Segment HTTP Tracking API, so the Segment and
RudderStack server SDKs send to ashiato unchanged.

A message goes the beacon's way: ``tracker.segment_messages`` makes it the beacon the
tag would have sent, ``beacon.validate`` and ``tracker.pipeline`` apply the same rules,
the group-commit writer stores it (answered only once durable), and the visitor's
recorded consent decides inside that transaction, as for ``/collect``. What the sender's
consent manager stated (``context.consent``, ``context.consentManagement``) is recorded
first as a receipt. ``userId`` with traits identifies the visitor (evidence ``api``: the
site's own backend, authenticated by the write key); ``alias`` links the previous id.

Answers are Segment's: 200 ``{"success": true}``; ``{"code", "message"}`` with 400
(malformed), 401 (write key), 413 (too large), 429 and 503 (with ``Retry-After``). A
message that is malformed on its own is dropped and counted, not the batch around it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from privacy import consent
from tracker import pipeline, useragent
from tracker.beacon import validate
from tracker.drops import DropReason
from tracker.errors import StorageError
from tracker.http_errors import (
    ANSWERED,
    BadRequest,
    TooManyRequests,
    Unauthorized,
    answer,
)
from tracker.ingest import api_client_ip, submit
from tracker.ratelimit import Limiter, client_key
from tracker.segment_body import MAX_MESSAGE_BYTES, decode, inflate, read_body
from tracker.segment_messages import (
    KINDS,
    Context,
    Converted,
    Message,
    convert,
)
from tracker.services import Services
from tracker.storage.records import ConsentReceipt, ConsentState, Event, Site, WriteItem
from tracker.useragent import UserAgentInfo
from tracker.write_keys import from_basic_auth

log = logging.getLogger("ashiato.segment")

CODES = {400: "invalid_request", 401: "invalid_write_key", 413: "payload_too_large",
         415: "unsupported_media_type", 429: "rate_limited", 503: "unavailable"}  # fmt: skip
SERVER = UserAgentInfo(None, None, None, None, "server")
"""A message that forwards no ``context.userAgent`` came from a server, not a bot."""
_message_decoder = msgspec.json.Decoder(Message)


def routes() -> list[BaseRoute]:
    return [Route(f"/v1/{kind}", endpoint, methods=["POST"]) for kind in ("batch", *KINDS)]


async def endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        await ingest(request, services, request.url.path.rsplit("/", 1)[1])
    except ANSWERED as exc:
        status, message, headers = answer(exc)
        return _answer(services, status, {"code": CODES.get(status, "error"),
                                          "message": message}, headers)  # fmt: skip
    except StorageError as exc:
        log.warning("storage unavailable", extra={"path": request.url.path, "cause": str(exc)})
        body = {"code": "unavailable", "message": "database unavailable"}
        return _answer(services, 503, body, {"Retry-After": "2"})
    return _answer(services, 200, {"success": True}, {})


def _answer(services: Services, status: int, body: object, headers: dict[str, str]) -> Response:
    services.metrics.responses[status] += 1
    return JSONResponse(body, status, headers=headers)


async def ingest(request: Request, services: Services, kind: str) -> None:
    ip = api_client_ip(request.client.host if request.client else None, request.headers,
                       services)  # fmt: skip
    _rate_limit(services, services.limits.ip, client_key(ip), 1)  # before any key lookup
    body = inflate(request.headers, await read_body(request))
    raws, sent_at, shared, body_key = decode(body, kind)
    site = await _site(services, from_basic_auth(request.headers.get("authorization")) or body_key)
    _rate_limit(services, services.limits.site, site.key, len(raws))
    now = time.time_ns() // 1_000_000
    converted = _convert(services, site, raws, kind, sent_at=sent_at, shared=shared)
    items, actions = await _items(services, site, converted, now)
    await submit(services, items)
    await _identify(services, site, actions)


def _rate_limit(services: Services, limiter: Limiter, key: str, cost: int) -> None:
    """A request's token (per address, as the API's) or its messages (per site)."""
    try:
        limiter.take(key, cost)
    except TooManyRequests:
        services.metrics.rate_limited[limiter.scope] += 1
        raise


async def _site(services: Services, write_key: str | None) -> Site:
    site_id = None if write_key is None else await services.write_keys.site_id(write_key)
    site = None if site_id is None else services.sites.by_id(site_id)
    if site_id is not None and site is None:  # added moments ago: not in the snapshot yet
        await services.sites.refresh(older_than=1.0)
        site = services.sites.by_id(site_id)
    if site is None:
        raise Unauthorized("a valid write key is required (HTTP Basic user, or writeKey)",
                           headers={"WWW-Authenticate": 'Basic realm="ashiato"'})  # fmt: skip
    return site


Usable = list[tuple[str, Converted]]
"""Each usable message: its kind, and what ashiato takes from it."""


def _convert(services: Services, site: Site, raws: Sequence[msgspec.Raw], kind: str, *,
             sent_at: str | None, shared: Context | None) -> Usable:  # fmt: skip
    """Each usable message with its kind; the others are dropped as invalid, counted."""
    index_key = services.personal.source.keyring.index_key
    out: Usable = []
    for raw in raws:
        try:
            if len(raw) > MAX_MESSAGE_BYTES:
                raise BadRequest("message too large")
            message = _message_decoder.decode(raw)
        except (BadRequest, msgspec.DecodeError):
            services.metrics.dropped[DropReason.INVALID] += 1
            continue
        message_kind = kind if kind != "batch" else (message.type or "")
        found = None
        if message_kind in KINDS:
            found = convert(message, message_kind, site_key=site.key, index_key=index_key,
                            sent_at=sent_at, shared=shared)  # fmt: skip
        if found is None:
            services.metrics.dropped[DropReason.INVALID] += 1
            continue
        out.append((message_kind, found))
    return out


Action = tuple[str, Converted, pipeline.Identification | Event]


async def _items(services: Services, site: Site, converted: Usable,
                 now: int) -> tuple[list[WriteItem], list[Action]]:  # fmt: skip
    """Receipts and events for the writer, and what to do once they are stored."""
    items: list[WriteItem] = []
    actions: list[Action] = []
    states: dict[str, ConsentState] = {}
    dropped = services.metrics.dropped
    for kind, found in converted:
        try:
            beacon = validate(found.raw)
        except BadRequest:
            dropped[DropReason.INVALID] += 1
            continue
        outcome = pipeline.run(_context(site, found, now), beacon)
        if isinstance(outcome, DropReason):
            dropped[outcome] += 1
            continue
        event = outcome.event if isinstance(outcome, pipeline.Identification) else outcome
        assert isinstance(event, Event)
        event.at = services.clock.order(event.vid, beacon.ts, event.at, now=now)
        event.message_id = found.message_id
        for vid in dict.fromkeys(v for v in (event.vid, found.user_vid) if v):
            items += await _receipt(services, site, found, vid, at=event.at, states=states)
        items.append(event)
        if kind in ("identify", "alias"):
            identified = outcome if isinstance(outcome, pipeline.Identification) else event
            actions.append((kind, found, identified))
    return items, actions


def _context(site: Site, found: Converted, now: int) -> pipeline.Context:
    forwarded = found.context
    agent = useragent.parse(forwarded.user_agent) if forwarded.user_agent else SERVER
    full_ip = pipeline.client_ip(forwarded.ip, None, ()) if forwarded.ip else None
    return pipeline.Context(now_ms=now, sites={site.key: site}, origin=None, user_agent=agent,
                            ip=pipeline.truncate_ip(full_ip), full_ip=full_ip)  # fmt: skip


async def _receipt(services: Services, site: Site, found: Converted, vid: str, *, at: int,
                   states: dict[str, ConsentState]) -> list[WriteItem]:  # fmt: skip
    """A receipt for what the sender's consent manager stated, when it changes the
    visitor's recorded consent (a sender repeats it on every message)."""
    if found.consent is None:
        return []
    if vid not in states:
        recorded = await services.store.consent_state(site.id, vid)
        states[vid] = consent.effective(site.consent_mode, recorded)
    analytics, marketing = found.consent
    state = states[vid]
    if analytics in (None, state.analytics) and marketing in (None, state.marketing):
        return []
    receipt = ConsentReceipt(secrets.token_hex(16), site.id, vid, analytics, marketing,
                             site.settings.policy_version, found.consent_source, at)  # fmt: skip
    states[vid] = consent.after(site.consent_mode, receipt, state) or state
    return [receipt]


async def _identify(services: Services, site: Site, actions: list[Action]) -> None:
    """After the events are stored: identify (the anonymous and the user's visitor id)
    and alias (the previous id to the lead the user's id stands for, or the other way)."""
    identity, dropped = services.identity, services.metrics.dropped
    for kind, found, outcome in actions:
        if kind == "identify" and isinstance(outcome, pipeline.Identification):
            vids = dict.fromkeys(v for v in (outcome.event.vid, found.user_vid) if v)
            for vid in vids:
                result = await identity.identify(
                    site, vid, outcome.traits, evidence="api", at=outcome.event.at,
                    full_ip=outcome.full_ip,
                )  # fmt: skip
                if isinstance(result, DropReason):
                    dropped[result] += 1
        elif kind == "alias" and found.user_vid and found.previous_vid:
            at = outcome.event.at if isinstance(outcome, pipeline.Identification) else outcome.at
            await _alias(services, site, found.previous_vid, found.user_vid, at)


async def _alias(services: Services, site: Site, previous: str, user: str, at: int) -> None:
    """Link whichever of the two ids is not linked yet to the lead the other stands for."""
    identity = services.identity
    for vid, other in ((previous, user), (user, previous)):
        lead = await identity.lead_of(other)
        if lead is not None and await identity.lead_of(vid) != lead:
            result = await identity.link(site, vid, lead, evidence="api", at=at)
            if isinstance(result, DropReason):
                services.metrics.dropped[result] += 1
            return
