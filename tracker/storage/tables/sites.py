"""Sites and the names of the data keys that seal system secrets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from tracker.errors import Conflict
from tracker.storage.records import DEFAULT_SITE_SETTINGS, ConsentMode, Site, SiteSettings
from tracker.storage.rows import SITE_COLUMNS, site_from_row, site_settings_json, to_json
from tracker.storage.script import Script, rows, run, value
from tracker.storage.tables import Tables


def add_site(site: Site) -> Script[int]:
    """The new site's id; ``Conflict`` when its name (or key) is taken."""
    site_id = yield value(
        "INSERT INTO sites (key, name, origins, consent_mode, created_at, settings, secret)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        site.key, site.name, to_json(list(site.origins)), site.consent_mode, site.created_at,
        site_settings_json(site.settings), site.secret,
    )  # fmt: skip
    if site_id is None:
        raise Conflict(f"a site named {site.name!r} already exists")
    return int(site_id)


def update_site(site: Site) -> Script[None]:
    yield run(
        "UPDATE sites SET origins = ?, consent_mode = ?, settings = ?, secret = ? WHERE id = ?",
        to_json(list(site.origins)), site.consent_mode, site_settings_json(site.settings),
        site.secret, site.id,
    )  # fmt: skip


def all_sites() -> Script[list[Site]]:
    found = yield rows(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY id")
    return [site_from_row(r) for r in found]


def system_key(name: str) -> Script[str | None]:
    key_id = yield value("SELECT key_id FROM system_keys WHERE name = ?", name)
    return None if key_id is None else str(key_id)


def claim_system_key(name: str, candidate: str) -> Script[str]:
    yield run("INSERT INTO system_keys (name, key_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
              name, candidate)  # fmt: skip
    return str((yield from system_key(name)))


class SiteTables(Tables):
    """Sites and system key names: mixed into both stores."""

    async def add_site(
        self,
        *,
        key: str,
        name: str,
        origins: Sequence[str],
        consent_mode: ConsentMode,
        now: int,
        settings: SiteSettings = DEFAULT_SITE_SETTINGS,
        secret: bytes | None = None,
    ) -> Site:
        site = Site(0, key, name, tuple(origins), consent_mode, now, settings, secret)
        return replace(site, id=await self.transact(partial(add_site, site)))

    async def update_site(self, site: Site) -> None:
        await self.transact(partial(update_site, site))

    async def list_sites(self) -> list[Site]:
        return await self.read(all_sites())

    async def get_system_key(self, name: str) -> str | None:
        return await self.read(system_key(name))

    async def system_key(self, name: str, candidate: str) -> str:
        """The data key id sealing system secrets; ``candidate`` if none was set yet."""
        return await self.transact(partial(claim_system_key, name, candidate))
