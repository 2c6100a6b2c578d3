"""Where a webhook may be sent: checked at registration and again at every delivery.

Deliveries carry decrypted personal data, so a registered URL must not turn the
service into a way to reach this host or the networks behind it (SSRF): loopback,
link-local (cloud metadata at 169.254.169.254), private, shared, reserved and
unspecified addresses are refused unless ``ASHIATO_WEBHOOK_ALLOW_PRIVATE`` allows
them; credentials in URLs are refused always; plain http needs
``ASHIATO_WEBHOOK_ALLOW_HTTP``.

Registration checks what the URL says (no network): its scheme, user info, and a
host that is an address in any spelling the system resolver accepts (``2130706433``,
``127.1``, ``0x7f.0.0.1`` all mean 127.0.0.1) or a ``localhost`` name. A name may
resolve anywhere and change later, so each delivery resolves it, checks every address,
and connects to the checked address itself (see :func:`pin`): there is no second
lookup for a DNS-rebinding answer to slip into.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tracker.settings import Settings

if TYPE_CHECKING:
    import httpx  # imported when a URL is checked: the collector alone never needs it

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""``(host, port) -> addresses``: a parameter of delivery, so tests resolve names
without DNS."""

_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class RefusedTarget(Exception):
    """A destination this deployment does not send to; the message names the rule."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    allow_private: bool = False
    allow_http: bool = False


def url_problem(url: str, policy: TargetPolicy) -> str | None:
    """Why ``url`` may not be registered (or used), or None; no network is touched."""
    if not _well_formed(url):
        return "url must be an absolute http(s) URL without spaces"
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "url must not contain credentials (the signature authenticates deliveries)"
    if parts.scheme == "http" and not policy.allow_http:
        return "url must use https (ASHIATO_WEBHOOK_ALLOW_HTTP allows http)"
    host = (parts.hostname or "").rstrip(".").lower()
    if policy.allow_private or not _names_local(host):
        return None
    return (
        "url must not point to this host or a private network "
        "(ASHIATO_WEBHOOK_ALLOW_PRIVATE allows it)"
    )


def _names_local(host: str) -> bool:
    """A ``localhost`` name, or an address that is not public, in any spelling."""
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    address = literal_address(host)
    return address is not None and not public(address)


def _well_formed(url: str) -> bool:
    """An http(s) URL with a host and a valid port that httpx accepts as it is."""
    import httpx

    if _URL_FORBIDDEN.search(url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port out of range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form the C resolver would read as one
    (``inet_aton`` takes ``2130706433``, ``127.1`` and hex/octal parts), or None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not re.fullmatch(r"[0-9a-fx.]+", host):
        return None  # a name: inet_aton would refuse it anyway
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def public(address: IPAddress) -> bool:
    """A globally routable unicast address (IPv4 inside IPv6 judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return public(embedded)
        if address in _NAT64:
            return public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses the system resolver gives ``host`` (the default resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request target bound to one checked address: send to ``url`` with ``headers``
    and ``extensions`` (the original Host header; TLS SNI and certificate checks
    against the original name)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


async def pin(url: str, policy: TargetPolicy, resolve: Resolver) -> Pinned:
    """Check ``url``, resolve its host once, check every address, and bind the request
    to the first: the connection goes to exactly the address that was checked."""
    import httpx

    problem = url_problem(url, policy)
    if problem is not None:
        raise RefusedTarget(problem)
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    address = literal_address(host)
    try:
        addresses = [address] if address is not None else await resolve(host, port)
    except OSError as exc:
        raise RefusedTarget(f"host does not resolve ({exc.__class__.__name__})") from None
    if not addresses:
        raise RefusedTarget("host does not resolve")
    if not policy.allow_private and not all(public(a) for a in addresses):
        raise RefusedTarget("host resolves to this host or a private network")
    netloc = target.netloc.decode("ascii")
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    return Pinned(target.copy_with(host=str(addresses[0])), {"Host": netloc}, extensions)


def webhook_policy(settings: Settings) -> TargetPolicy:
    return TargetPolicy(settings.webhook_allow_private, settings.webhook_allow_http)
