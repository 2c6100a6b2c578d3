"""Why this browser's events would be dropped: the collector's own gates, run on the
demo page's request.

The collector answers a dropped beacon as it answers a stored one (so a scraper cannot
tell which filter caught it) and only counts the reason. The demo page is served from
the same origin, to the same browser, as its beacons, so running the same checks on the
page's request tells the visitor what the collector will decide about their events.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from privacy import consent
from tracker import pipeline, useragent
from tracker.beacon import Beacon
from tracker.drops import DropReason
from tracker.services import Services
from tracker.storage.records import Site

GPC = "gpc"
"""Not a drop reason: the tag itself does not identify a GPC browser from a form."""


@dataclass(frozen=True, slots=True)
class Finding:
    reason: str
    """A ``DropReason`` value, or ``GPC``."""
    origin: str
    """The page's origin, which its beacons carry."""
    origins: tuple[str, ...]
    """The site's origins."""
    user_agent: str


def page_origin(request: Request) -> str:
    """The origin the tag's beacons from this page carry: the page's own (``/t.js`` and
    ``/collect`` are on the page's host)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def gate_drops(request: Request, site: Site) -> list[DropReason]:
    """What the collector's gates (site, origin, bot) say about a beacon from this page."""
    ctx = pipeline.Context(
        now_ms=0,
        sites={site.key: site},
        origin=page_origin(request),
        user_agent=useragent.parse(request.headers.get("user-agent", "")),
        ip=None,
    )
    item = pipeline.Incoming(Beacon(site=site.key, type="pageview", vid="0" * 32))
    reasons = []
    for gate in pipeline.GATES:
        result = gate(ctx, item)
        if isinstance(result, DropReason):
            reasons.append(result)
            if result is DropReason.UNKNOWN_SITE:
                break
    return reasons


async def findings(
    services: Services, request: Request, site: Site, vid: str | None
) -> list[Finding]:
    """Every reason this browser's events, or its form's identification, are dropped
    (each one means no lead will come from the form)."""
    reasons: list[str] = list(gate_drops(request, site))
    state = await services.store.consent_state(site.id, vid) if vid else None
    if not consent.allows_analytics(site.consent_mode, state):
        reasons.append(DropReason.NO_CONSENT)
    elif not consent.allows_marketing(site.consent_mode, state):
        reasons.append(DropReason.NO_MARKETING_CONSENT)
    gpc = request.headers.get("sec-gpc", "").strip() == "1"
    if gpc and (state is None or not consent.allows_marketing(site.consent_mode, state)):
        reasons.append(GPC)
    if site.settings.identify == "signed":
        reasons.append(DropReason.UNSIGNED_IDENTIFY)
    origin, agent = page_origin(request), request.headers.get("user-agent", "")
    return [Finding(str(r), origin, site.origins, agent) for r in reasons]
