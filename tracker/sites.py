"""Sites: creating them, and the in-memory directory the collector looks keys up in.

The directory is a snapshot of the ``sites`` table refreshed every few seconds, so the
hot path never queries the database for a site. An unknown key triggers an early
refresh at most once a second, so a site added with the CLI works at once without
letting a flood of bogus keys hammer the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from privacy.consent import CMP_SOURCES
from privacy.vault import Vault
from tracker.errors import Invalid, StorageError
from tracker.storage import Store
from tracker.storage.records import (
    CONSENT_MODES,
    DEFAULT_CMP_MAPPING,
    IDENTIFY_POLICIES,
    CmpMapping,
    ConsentMode,
    Site,
    SiteSettings,
)

_FORCED_REFRESH_GAP = 1.0


def normalise_origin(origin: str) -> str:
    """``https://WWW.Example.co.jp/`` -> ``https://www.example.co.jp``; errors say why."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        raise Invalid(f"not an origin: {origin!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"origin must be http(s)://host[:port], got {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise Invalid(f"origin must not have a path, query or user: {origin!r}")
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def new_site_key() -> str:
    """16 URL-safe characters, never starting with ``-``: a key is typed as a command-line
    argument (``ashiato site write-key KEY``, ``--site KEY``), where a leading dash reads as
    an option (1 key in 64 did)."""
    while (key := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return key


async def create_site(
    store: Store,
    vault: Vault,
    name: str,
    origins: Sequence[str],
    consent_mode: str,
    *,
    now: int,
    identify: str = "any",
    forms: str = "marked",
    policy_version: str = "unspecified",
    cookie_domain: str = "",
    cmp: CmpMapping = DEFAULT_CMP_MAPPING,
) -> tuple[Site, bytes]:
    """A new site and its identify secret (returned once; stored only sealed)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("site name must be 1 to 100 characters")
    if consent_mode not in CONSENT_MODES:
        raise Invalid(f"consent mode must be one of {', '.join(CONSENT_MODES)}")
    if identify not in IDENTIFY_POLICIES or forms not in ("marked", "all"):
        raise Invalid("identify must be any or signed; forms must be marked or all")
    if not origins:
        raise Invalid("a site needs at least one --origin")
    if not policy_version or len(policy_version) > 64:
        raise Invalid("policy version must be 1 to 64 characters")
    clean = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
    cookie_domain = check_cookie_domain(cookie_domain, clean)
    mode: ConsentMode = "opt-in" if consent_mode == "opt-in" else "notice"
    settings = SiteSettings(
        identify=identify,
        forms=forms,
        policy_version=policy_version,
        cookie_domain=cookie_domain,
        cmp=check_cmp(cmp),
    )
    site = await store.add_site(
        key=new_site_key(),
        name=name,
        origins=clean,
        consent_mode=mode,
        now=now,
        settings=settings,
    )
    secret = secrets.token_bytes(32)
    site = dataclasses.replace(
        site, secret=await vault.seal("sites", "secret", str(site.id), secret)
    )
    await store.update_site(site)
    return site, secret


async def edit_site(
    store: Store,
    site: Site,
    *,
    origins: Sequence[str],
    consent_mode: str,
    identify: str,
    forms: str,
) -> Site:
    """Change a site's origins, consent mode, identify policy and form capture, under
    the same rules as at creation."""
    if consent_mode not in CONSENT_MODES:
        raise Invalid(f"consent mode must be one of {', '.join(CONSENT_MODES)}")
    if identify not in IDENTIFY_POLICIES or forms not in ("marked", "all"):
        raise Invalid("identify must be any or signed; forms must be marked or all")
    if not origins:
        raise Invalid("a site needs at least one origin")
    clean = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
    check_cookie_domain(site.settings.cookie_domain, clean)
    mode: ConsentMode = "opt-in" if consent_mode == "opt-in" else "notice"
    settings = dataclasses.replace(site.settings, identify=identify, forms=forms)
    changed = dataclasses.replace(site, origins=clean, consent_mode=mode, settings=settings)
    await store.update_site(changed)
    return changed


async def remove_site(store: Store, site: Site, *, now: int) -> Site:
    """Stop collecting for the site at once (its key becomes unknown to the collector);
    its data stays until retention deletes it, as every site's does."""
    if site.settings.removed_at:
        raise Invalid("this site was removed already")
    settings = dataclasses.replace(site.settings, removed_at=now)
    removed = dataclasses.replace(site, settings=settings)
    await store.update_site(removed)
    return removed


def check_cookie_domain(domain: str, origins: Sequence[str]) -> str:
    """A domain every origin's host lies within, at least two labels (never a bare TLD)."""
    domain = domain.strip().lower().removeprefix(".")
    if not domain:
        return ""
    hosts = [urlsplit(o).hostname or "" for o in origins]
    if "." not in domain or not all(h == domain or h.endswith("." + domain) for h in hosts):
        raise Invalid("cookie domain must contain every origin's host, e.g. example.co.jp")
    return domain


_TCF_PURPOSE = re.compile(r"p?([1-9]|1[0-9]|2[0-4])")
_GCM_TYPE = re.compile(r"[a-z][a-z_]{0,39}")


async def set_cmp(store: Store, site: Site, cmp: CmpMapping) -> Site:
    """Replace the site's CMP setting (checked as at creation)."""
    settings = dataclasses.replace(site.settings, cmp=check_cmp(cmp))
    changed = dataclasses.replace(site, settings=settings)
    await store.update_site(changed)
    return changed


def check_cmp(cmp: CmpMapping) -> CmpMapping:
    """Known signals; TCF purposes 1 to 24 (``p`` for the publisher's); Consent Mode
    type names. An empty list would never grant: refused."""
    if any(s not in CMP_SOURCES for s in cmp.signals):
        raise Invalid(f"cmp must be one of {', '.join(CMP_SOURCES)}")
    for name, values, pattern in (
        ("TCF analytics", cmp.tcf_analytics, _TCF_PURPOSE),
        ("TCF marketing", cmp.tcf_marketing, _TCF_PURPOSE),
        ("Consent Mode analytics", cmp.gcm_analytics, _GCM_TYPE),
        ("Consent Mode marketing", cmp.gcm_marketing, _GCM_TYPE),
    ):
        if not values or not all(pattern.fullmatch(v) for v in values):
            raise Invalid(
                f"{name} purposes must be a comma-separated list, e.g. "
                + ("1,8 or p1,p8" if pattern is _TCF_PURPOSE else "analytics_storage")
            )
    return dataclasses.replace(cmp, signals=tuple(dict.fromkeys(cmp.signals)))


class SiteDirectory:
    def __init__(
        self, store: Store, *, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._by_key: dict[str, Site] = {}
        self._origins: frozenset[str] = frozenset()
        self._modes: dict[int, ConsentMode] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def modes(self) -> dict[int, ConsentMode]:
        """site id -> consent mode, for the consent rules."""
        return self._modes

    def current(self) -> dict[str, Site]:
        """The last snapshot, without refreshing (for readers that tolerate seconds)."""
        return self._by_key

    def by_id(self, site_id: int) -> Site | None:
        return next((s for s in self._by_key.values() if s.id == site_id), None)

    @property
    def origins(self) -> frozenset[str]:
        """Every origin any site allows (CORS answers only these)."""
        return self._origins

    def fresh(self, wanted: Sequence[str]) -> dict[str, Site] | None:
        """The key -> Site map without awaiting, when it is fresh and knows every wanted
        key (the hot path's common case); else None: await :meth:`snapshot`."""
        if self._clock() - self._loaded_at > self._ttl:
            return None
        by_key = self._by_key
        for key in wanted:
            if key not in by_key:
                return None
        return by_key

    async def snapshot(self, *, wanted: Sequence[str] = ()) -> dict[str, Site]:
        """The current key -> Site map; refreshed when stale or a wanted key is missing."""
        found = self.fresh(wanted)
        if found is not None:
            return found
        age = self._clock() - self._loaded_at
        if age > self._ttl:
            await self._refresh_or_keep(self._ttl)
        elif age > _FORCED_REFRESH_GAP and any(k not in self._by_key for k in wanted):
            await self._refresh_or_keep(_FORCED_REFRESH_GAP)
        return self._by_key

    async def _refresh_or_keep(self, older_than: float) -> None:
        """A database hiccup must not stop collection for sites we already know."""
        try:
            await self.refresh(older_than=older_than)
        except StorageError:
            if not self._by_key:
                raise

    async def refresh(self, *, older_than: float = 0.0) -> None:
        async with self._lock:
            if self._clock() - self._loaded_at < older_than:
                return  # another request refreshed while this one waited
            # A removed site's key is unknown to the collector (its data ages out).
            sites = [s for s in await self._store.list_sites() if not s.settings.removed_at]
            self._by_key = {s.key: s for s in sites}
            self._origins = frozenset(o for s in sites for o in s.origins)
            self._modes = {s.id: s.consent_mode for s in sites}
            self._loaded_at = self._clock()
