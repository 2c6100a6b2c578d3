"""The ingest pipeline: named pure steps from a validated beacon to what is written.

Gate steps (site, origin, bot) return the beacon or a ``DropReason``, which the caller
counts and does not store; enrich steps fill in the Event (user agent, truncated IP,
server time, scrubbed URLs). A consent beacon becomes a receipt, a forget beacon a
Forget, an identify beacon an Identification (its traits go to ``identity``, never to
the events table). Consent itself is enforced where it cannot be raced: inside the
write transaction, against the server's receipts (``privacy.consent.Rules``).

Nothing here does I/O: everything a step needs (sites, clock, the client's address,
ids) arrives in the ``Context``.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from privacy.consent import from_cmp
from privacy.redact import redact, redact_props
from tracker.beacon import Beacon
from tracker.drops import DropReason
from tracker.scrub import scrub_url
from tracker.settings import IPNetwork
from tracker.storage.records import ConsentReceipt, Event, Forget, Site, WriteItem
from tracker.useragent import UserAgentInfo

MAX_CLIENT_WAIT_MS = 24 * 3600 * 1000
"""An event may wait in a browser (offline, held until consent) at most this long."""


@dataclass(slots=True)
class Context:
    """What the pipeline knows about the request that carried the events."""

    now_ms: int
    sites: Mapping[str, Site]
    origin: str | None
    user_agent: UserAgentInfo
    ip: str | None
    """The client's address, already truncated."""
    full_ip: str | None = None
    """Untruncated, only for an identification (stored sealed with the lead's key)."""
    gpc: bool = False
    """The request carried ``Sec-GPC: 1``."""
    new_id: Callable[[], str] = lambda: secrets.token_hex(16)


@dataclass(slots=True)
class Identification:
    """An identify beacon that passed the gates: its event, and the person data."""

    event: Event
    site: Site
    traits: dict[str, str]
    token: str | None
    full_ip: str | None


Outcome = Event | ConsentReceipt | Forget | Identification


@dataclass(slots=True)
class Incoming:
    beacon: Beacon
    site: Site | None = None


Gate = Callable[[Context, Incoming], Incoming | DropReason]


def check_site(ctx: Context, item: Incoming) -> Incoming | DropReason:
    site = ctx.sites.get(item.beacon.site)
    if site is None:
        return DropReason.UNKNOWN_SITE
    item.site = site
    return item


def check_origin(ctx: Context, item: Incoming) -> Incoming | DropReason:
    """Browsers always send Origin on a cross-site POST; server-side senders send none."""
    assert item.site is not None
    if ctx.origin is None or item.site.allows_origin(ctx.origin):
        return item
    return DropReason.FOREIGN_ORIGIN


def filter_bots(ctx: Context, item: Incoming) -> Incoming | DropReason:
    return DropReason.BOT if ctx.user_agent.is_bot else item


GATES: tuple[Gate, ...] = (check_site, check_origin, filter_bots)


def build_event(ctx: Context, item: Incoming) -> Event:
    """The enrich steps: everything stored comes from here, scrubbed and truncated.
    Free text (title, event name, props) keeps no email address or phone number."""
    b, site = item.beacon, item.site
    assert site is not None
    page = scrub_url(b.url)
    ua = ctx.user_agent
    return Event(
        site_id=site.id, type=b.type, vid=b.vid, sid=b.sid,
        at=server_time(ctx.now_ms, b.ts, b.sent),
        url=page.url, referrer=scrub_url(b.referrer, web_only=False).url,
        title=b.title and redact(b.title), name=b.name and redact(b.name),
        props=b.props and redact_props(b.props),
        utm_source=page.utm.get("utm_source"), utm_medium=page.utm.get("utm_medium"),
        utm_campaign=page.utm.get("utm_campaign"), utm_term=page.utm.get("utm_term"),
        utm_content=page.utm.get("utm_content"), click_ids=dict(page.click_ids) or None,
        browser=ua.browser, browser_version=ua.browser_version, os=ua.os,
        os_version=ua.os_version, device=ua.device, ip=ctx.ip,
    )  # fmt: skip


def run(ctx: Context, beacon: Beacon) -> Outcome | DropReason:
    item = Incoming(beacon)
    for gate in GATES:
        result = gate(ctx, item)
        if isinstance(result, DropReason):
            return result
        item = result
    assert item.site is not None
    if beacon.type == "consent":
        return consent_receipt(ctx, item)
    if beacon.type == "forget":
        at = server_time(ctx.now_ms, beacon.ts, beacon.sent)
        receipt = ConsentReceipt(ctx.new_id(), item.site.id, beacon.vid, False, False,
                                 _policy(item), "forget", at)  # fmt: skip
        return Forget(beacon.vid, receipt)
    event = build_event(ctx, item)
    if beacon.type == "identify":
        assert beacon.traits is not None
        event.name = beacon.form and redact(beacon.form)  # which form identified them
        return Identification(event, item.site, beacon.traits, beacon.token, ctx.full_ip)
    return event


def consent_receipt(ctx: Context, item: Incoming) -> ConsentReceipt:
    b, site = item.beacon, item.site
    assert site is not None
    assert b.consent is not None
    analytics, marketing = b.consent
    at = server_time(ctx.now_ms, b.ts, b.sent)
    if b.source is None:
        return ConsentReceipt(b.cid or ctx.new_id(), site.id, b.vid, analytics, marketing,
                              _policy(item), "banner", at)  # fmt: skip
    # The CMP's own signal decides under the site's mapping (validated by the beacon).
    cmp = from_cmp(b.source, b.signal or "", site.settings.cmp)
    return ConsentReceipt(b.cid or ctx.new_id(), site.id, b.vid, cmp.analytics, cmp.marketing,
                          _policy(item), b.source, at, cmp.signal)  # fmt: skip


def _policy(item: Incoming) -> str:
    assert item.site is not None
    return item.beacon.policy or item.site.settings.policy_version


def with_gpc_receipts(ctx: Context, beacons: Sequence[Beacon], items: list[WriteItem]) -> (
    list[WriteItem]
):  # fmt: skip
    """Global Privacy Control (header or the tag's flag) as a receipt before a visitor's
    first item: marketing off, unless they grant it explicitly later. The consent rules
    keep only the first such receipt per visitor, so repeating the signal adds nothing."""
    flagged = {b.vid for b in beacons if b.gpc or ctx.gpc}
    if not flagged:
        return items
    out: list[WriteItem] = []
    seen: set[tuple[int, str]] = set()
    for item in items:
        site_id = item.receipt.site_id if isinstance(item, Forget) else item.site_id
        key = (site_id, item.vid)
        if item.vid in flagged and key not in seen:
            seen.add(key)
            out.append(ConsentReceipt(ctx.new_id(), site_id, item.vid, None, False, "gpc", "gpc",
                                      ctx.now_ms))  # fmt: skip
        out.append(item)
    return out


def server_time(now_ms: int, ts: int | None, sent: int | None) -> int:
    """The server's clock is the record's time; the browser only says how long it waited.

    Both browser times come from the same (possibly wrong) clock, so their difference is
    meaningful even when their absolute values are not; it is clamped to a day.
    """
    if ts is None or sent is None:
        return now_ms
    return now_ms - min(max(sent - ts, 0), MAX_CLIENT_WAIT_MS)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str | None:
    """The client's address: the peer's, unless the peer is a trusted proxy.

    Behind trusted proxies the right-most ``X-Forwarded-For`` entry that is not itself a
    trusted proxy is the client; entries further left are whatever the client claimed.
    """
    address = _ip(peer)
    if address is None or not forwarded_for or not _is_trusted(address, trusted):
        return str(address) if address else None
    for hop in reversed(forwarded_for.split(",")[-16:]):
        candidate = _ip(hop.strip())
        if candidate is None:
            break
        address = candidate
        if not _is_trusted(candidate, trusted):
            break
    return str(address)


def is_trusted_peer(peer: str | None, trusted: Sequence[IPNetwork]) -> bool:
    address = _ip(peer)
    return address is not None and _is_trusted(address, trusted)


def truncate_ip(ip: str | None) -> str | None:
    """IPv4 to its /24, IPv6 to its /48, before anything is stored."""
    address = _ip(ip)
    if address is None:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[IPNetwork]
) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
