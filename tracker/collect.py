"""Beacon and pixel endpoints: read -> parse -> pipeline -> writer -> answer.

``POST /collect`` is the hot path, so it is a plain ASGI handler that ``tracker.app``
dispatches to before Starlette's router (measured: the router, request and response
objects and two exception middlewares cost about as much as all of ashiato's own work
per beacon). Everything else, including the pixel, goes through Starlette.

A 2xx answer means every accepted event of the request is committed. Dropped events
(bots, unknown sites, foreign origins, no consent) get the same 204 as stored ones, so
the answer does not tell a scraper which filter caught it; the reason is counted.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from privacy import consent
from tracker import cookies, pipeline, useragent
from tracker.beacon import PIXEL_TYPES, Beacon, parse_body, validate
from tracker.errors import (
    BadRequest,
    HTTPError,
    Overloaded,
    PayloadTooLarge,
    StorageError,
    TooManyRequests,
    UnsupportedMediaType,
)
from tracker.ratelimit import client_key
from tracker.services import Services
from tracker.settings import IPNetwork
from tracker.storage.records import ConsentReceipt, Event, Forget, Site, WriteItem

log = logging.getLogger("ashiato.collect")

JSON = "application/json"
COLLECTOR_PATHS = frozenset({"/collect", "/p.gif"})
"""Whose answers ``ashiato_http_responses_total`` counts (every status, 2xx included)."""
_ACCEPTED_TYPES = ("", "text/plain", "application/json")
_WANTED_HEADERS = frozenset(
    {
        b"origin",
        b"user-agent",
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"sec-gpc",
        b"host",
        b"cookie",
    }
)

# The smallest transparent GIF (43 bytes).
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The parts of a request the pipeline looks at, whichever framework read it."""

    peer: str | None
    headers: Mapping[str, str]
    scheme: str = "http"

    @classmethod
    def from_scope(cls, scope: Scope) -> ClientInfo:
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in _WANTED_HEADERS
        }
        client = scope.get("client")
        return cls(client[0] if client else None, headers, scope.get("scheme", "http"))

    def https(self, trusted: tuple[IPNetwork, ...]) -> bool:
        """Reached over HTTPS: directly, or as a trusted proxy in front of us says."""
        if self.scheme == "https":
            return True
        proto = self.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto == "https" and pipeline.is_trusted_peer(self.peer, trusted)


async def collect_asgi(scope: Scope, receive: Receive, send: Send, services: Services) -> None:
    """``POST /collect``: one event or ``{"events": [...]}``; 204 once committed."""
    client = ClientInfo.from_scope(scope)
    origin = client.headers.get("origin")
    try:
        try:
            body = await read_body(client.headers, receive, services.settings.max_body_bytes)
            raws = parse_body(body, max_events=services.settings.max_batch_events)
            beacons = [validate(raw, index=i) for i, raw in enumerate(raws)]
        except HTTPError:
            services.metrics.dropped[pipeline.Drop.INVALID] += 1
            raise
        set_cookie = await ingest(client, services, beacons, origin)
    except HTTPError as exc:
        headers = exc.headers | cors_headers(services, origin)
        body = orjson.dumps({"error": exc.message})
        await _respond(send, services, exc.status, headers, body, media_type=JSON)
        return
    except Exception:
        log.exception("collect failed")
        body = b'{"error":"internal error"}'
        await _respond(send, services, 500, {}, body, media_type=JSON)
        return
    headers = cors_headers(services, origin)
    if set_cookie:
        headers["Set-Cookie"] = set_cookie
    await _respond(send, services, 204, headers, b"")


async def _respond(
    send: Send,
    services: Services,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    media_type: str | None = None,
) -> None:
    services.metrics.responses[status] += 1
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if media_type:
        raw.append((b"content-type", media_type.encode()))
    if body or status != 204:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The request body, refusing compressed or oversized bodies before reading them."""
    if headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("compressed bodies are not accepted")
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        raise UnsupportedMediaType("send JSON as text/plain or application/json")
    declared = headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(f"body larger than {limit} bytes")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not body:
        raise BadRequest("empty body")
    return body


async def pixel(request: Request) -> Response:
    """``GET /p.gif``: a page view or event from query parameters (noscript, email opens).
    ``HEAD`` (link checkers, prefetchers) gets the same headers and records nothing."""
    services: Services = request.app.state.services
    if request.method == "GET":
        client = ClientInfo(request.client.host if request.client else None, request.headers)
        raw = pixel_beacon(request.query_params, request.headers)
        await ingest(client, services, [validate(raw, types=PIXEL_TYPES)], None)
    services.metrics.responses[200] += 1
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


async def ingest(
    client: ClientInfo, services: Services, beacons: list[Beacon], origin: str | None
) -> str | None:
    """Run the beacons through the pipeline and the writer, then identify; return the
    ``Set-Cookie`` value for the visitor cookie, if this answer should carry one."""
    headers, trusted = client.headers, services.settings.trusted_proxies
    full_ip = _client_ip(client.peer, headers.get("x-forwarded-for"), trusted)
    wanted = [b.site for b in beacons]
    sites = services.sites.fresh(wanted)  # no await in the common case
    if sites is None:
        sites = await services.sites.snapshot(wanted=wanted)
    rate_limit(services, full_ip, beacons, sites)
    site = sites.get(beacons[0].site)
    domain = None
    if site is not None and client.https(trusted):
        domain = cookies.first_party_domain(site, headers.get("host"), origin)
    cookie = cookies.read_vid(headers.get("cookie")) if domain is not None else None
    own_cookie = cookie is not None and cookie[1]
    if cookie is not None:  # the cookie (the collector's own first) is who this visitor is
        for beacon in beacons:
            beacon.vid = cookie[0]
    ctx = pipeline.Context(
        now_ms=time.time_ns() // 1_000_000,
        sites=sites,
        origin=origin,
        user_agent=useragent.parse(headers.get("user-agent", "")),
        ip=_truncated(full_ip),
        full_ip=full_ip,
        gpc=headers.get("sec-gpc", "").strip() == "1",
    )
    items, identifications = _run_pipeline(services, ctx, beacons)
    if items:
        try:
            await services.writer.submit(items)
        except HTTPError:
            services.metrics.dropped[pipeline.Drop.OVERLOADED] += len(items)
            raise
    for found in identifications:
        try:
            result = await services.identity.from_browser(
                found.site, found.event, found.traits, found.token, found.full_ip
            )
        except StorageError as exc:  # the events are stored; the link is not
            log.warning("identification not recorded: %s", exc)
            raise Overloaded("database unavailable", retry_after=2) from exc
        if isinstance(result, str):
            services.metrics.dropped[result] += 1
    if site is None or domain is None or not items:
        return None
    return await _visitor_cookie(
        services, site, domain, own_cookie=own_cookie, vid=beacons[0].vid, items=items
    )


def _run_pipeline(
    services: Services, ctx: pipeline.Context, beacons: list[Beacon]
) -> tuple[list[WriteItem], list[pipeline.Identification]]:
    items: list[WriteItem] = []
    identifications: list[pipeline.Identification] = []
    dropped, clock = services.metrics.dropped, services.clock
    for beacon in beacons:
        outcome = pipeline.run(ctx, beacon)
        if isinstance(outcome, pipeline.Drop):
            dropped[outcome] += 1
            continue
        event = outcome.event if isinstance(outcome, pipeline.Identification) else outcome
        if isinstance(event, Event):
            event.at = clock.order(event.vid, beacon.ts, event.at, now=ctx.now_ms)
        if isinstance(outcome, pipeline.Identification):
            items.append(outcome.event)
            identifications.append(outcome)
        else:
            items.append(outcome)
    return pipeline.with_gpc_receipts(ctx, beacons, items), identifications


async def _visitor_cookie(
    services: Services,
    site: Site,
    domain: str,
    *,
    own_cookie: bool,
    vid: str,
    items: list[WriteItem],
) -> str | None:
    """Clear the cookie on a forget or a withdrawal; set it once, when the collector's
    own is not there yet (replacing the tag's, if any) and the visitor's consent (as now
    recorded) allows analytics; else leave it."""
    refused = any(
        isinstance(i, Forget) or (isinstance(i, ConsentReceipt) and i.analytics is False)
        for i in items
    )
    if refused:
        return cookies.clear_vid(domain)
    if own_cookie:
        return None
    state = await services.store.consent_state(site.id, vid)
    if not consent.allows_analytics(site.consent_mode, state):
        return None
    return cookies.set_vid(vid, domain)


def rate_limit(
    services: Services, ip: str | None, beacons: list[Beacon], sites: Mapping[str, Any]
) -> None:
    """Per address, then per (known) site; refused events never reach the writer queue."""
    limits, limiter = services.limits, services.limits.ip
    try:
        limiter.take(client_key(ip), len(beacons))
        per_site: dict[str, int] = {}  # (a Counter costs a per-request generator and ~3 µs)
        for beacon in beacons:
            if beacon.site in sites:
                per_site[beacon.site] = per_site.get(beacon.site, 0) + 1
        limiter = limits.site
        for site_key, count in per_site.items():
            limiter.take(site_key, count)
    except TooManyRequests:
        services.metrics.rate_limited[limiter.scope] += 1
        services.metrics.dropped[pipeline.Drop.RATE_LIMITED] += len(beacons)
        raise


def api_client_ip(
    request_client: str | None, headers: Mapping[str, str], services: Services
) -> str | None:
    return _client_ip(
        request_client, headers.get("x-forwarded-for"), services.settings.trusted_proxies
    )


@lru_cache(maxsize=4096)
def _client_ip(
    peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]
) -> str | None:
    return pipeline.client_ip(peer, forwarded_for, trusted)


@lru_cache(maxsize=4096)
def _truncated(ip: str | None) -> str | None:
    return pipeline.truncate_ip(ip)


def cors_headers(services: Services, origin: str | None) -> dict[str, str]:
    """CORS only for origins some site allows; the response varies by Origin."""
    if origin is None or origin not in services.sites.origins:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


async def preflight(request: Request) -> Response:
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    await services.sites.snapshot()
    headers = cors_headers(services, origin)
    if "Access-Control-Allow-Origin" not in headers:
        return Response(status_code=403, headers=headers)
    headers |= {
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "86400",
    }
    return Response(status_code=204, headers=headers)


def pixel_beacon(query: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
    """A beacon from pixel query parameters; the visitor id falls back to the visitor
    cookie (the collector's own ``id.s`` first, else the tag's bare id), then a new one."""
    fields = ("site", "vid", "url", "referrer", "title", "name")
    raw: dict[str, Any] = {k: query[k] for k in fields if k in query}
    raw["type"] = query.get("type", "pageview")
    if "vid" not in raw:
        cookie = cookies.read_vid(headers.get("cookie"))
        raw["vid"] = cookie[0] if cookie else secrets.token_hex(16)
    if "url" not in raw and raw["type"] == "pageview":
        raw["url"] = headers.get("referer")
    return raw
