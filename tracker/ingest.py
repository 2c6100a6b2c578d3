"""From validated beacons to committed events: pipeline, writer, identification, cookie.

Shared by the beacon (``tracker.collect``) and the pixel (``tracker.pixel``), whatever
framework read the request: ``ClientInfo`` is the part of it the pipeline looks at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from starlette.types import Scope

from privacy import consent
from tracker import cookies, pipeline, useragent
from tracker.beacon import Beacon
from tracker.drops import DropReason
from tracker.errors import StorageError
from tracker.http_errors import HTTPError, Overloaded, TooManyRequests
from tracker.memo import Memo
from tracker.ratelimit import client_key
from tracker.services import Services
from tracker.settings import IPNetwork
from tracker.storage.records import ConsentReceipt, Event, Forget, Site, WriteItem

log = logging.getLogger("ashiato.collect")

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


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The parts of a request the pipeline looks at, whichever framework read it."""

    peer: str | None
    headers: Mapping[str, str]
    scheme: str = "http"

    @classmethod
    def from_scope(cls, scope: Scope) -> ClientInfo:
        client = scope.get("client")
        return cls.of(client[0] if client else None, scope["headers"], scope.get("scheme", "http"))

    @classmethod
    def of(
        cls, peer: str | None, raw_headers: Iterable[tuple[bytes, bytes]], scheme: str
    ) -> ClientInfo:
        """From the request's (lower-case name, value) pairs, as ASGI and httptools give
        them; of a repeated header, the last."""
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers if k in _WANTED_HEADERS
        }
        return cls(peer, headers, scheme)

    def https(self, trusted: tuple[IPNetwork, ...]) -> bool:
        """Reached over HTTPS: directly, or as a trusted proxy in front of us says."""
        if self.scheme == "https":
            return True
        proto = self.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto == "https" and pipeline.is_trusted_peer(self.peer, trusted)


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
    await submit(services, items)
    for found in identifications:
        try:
            result = await services.identity.from_browser(
                found.site, found.event, found.traits, found.token, found.full_ip
            )
        except StorageError as exc:  # the events are stored; the link is not
            log.warning("identification not recorded: %s", exc)
            raise Overloaded("database unavailable", retry_after=2) from exc
        if isinstance(result, DropReason):
            services.metrics.dropped[result] += 1
    if site is None or domain is None or not items:
        return None
    return await _visitor_cookie(
        services, site, domain, own_cookie=own_cookie, vid=beacons[0].vid, items=items
    )


async def submit(services: Services, items: list[WriteItem]) -> None:
    """Hand the items to the group-commit writer; return once they are durable."""
    if not items:
        return
    try:
        await services.writer.submit(items)
    except HTTPError:
        services.metrics.dropped[DropReason.OVERLOADED] += len(items)
        raise


def _run_pipeline(
    services: Services, ctx: pipeline.Context, beacons: list[Beacon]
) -> tuple[list[WriteItem], list[pipeline.Identification]]:
    items: list[WriteItem] = []
    identifications: list[pipeline.Identification] = []
    dropped, clock = services.metrics.dropped, services.clock
    for beacon in beacons:
        outcome = pipeline.run(ctx, beacon)
        if isinstance(outcome, DropReason):
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
        services.metrics.dropped[DropReason.RATE_LIMITED] += len(beacons)
        raise


def api_client_ip(
    request_client: str | None, headers: Mapping[str, str], services: Services
) -> str | None:
    return _client_ip(
        request_client, headers.get("x-forwarded-for"), services.settings.trusted_proxies
    )


_CLIENTS: Memo[tuple[str | None, str | None, tuple[IPNetwork, ...]], str | None] = Memo(
    1 << 20, lambda key: len(key[0] or "") + len(key[1] or "")
)
"""Client addresses by (peer, X-Forwarded-For): 1 MiB (the header is the client's to make
long)."""


def _client_ip(
    peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]
) -> str | None:
    key = (peer, forwarded_for, trusted)
    found = _CLIENTS.get(key)
    if found is None:
        found = pipeline.client_ip(peer, forwarded_for, trusted)
        if found is not None:
            _CLIENTS.put(key, found)
    return found


@lru_cache(maxsize=4096)
def _truncated(ip: str | None) -> str | None:
    return pipeline.truncate_ip(ip)
