"""Building the parts from Settings, shared by the server and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from identity.resolution import Resolution
from identity.service import Identity
from privacy.audit import AuditLog
from privacy.crypto.datakeys import DataKeys
from privacy.crypto.keyfile import KeyringSource
from privacy.dsr import DataSubjectRequests
from privacy.keys import check_master_key
from privacy.personal import PersonalData
from privacy.retention import Policy, Retention
from privacy.vault import Vault
from scoring.service import Scoring
from tracker.settings import Settings
from tracker.storage import Store, open_store
from tracker.storage.keystore import KeyStore, open_keystore
from tracker.storage.records import Site

DEV_KEY_FILE = Path("keys/dev-master.key")


def keyring_source(settings: Settings) -> KeyringSource:
    """The master keys, or KeyConfigError saying exactly what is missing."""
    database_dir = settings.sqlite_path.parent if settings.sqlite_path else None
    return KeyringSource.load(
        key_file=settings.master_key_file,
        key_text=settings.master_key,
        dev=settings.dev,
        dev_key_file=DEV_KEY_FILE,
        database_dir=database_dir,
    )


def key_setting(settings: Settings) -> str:
    """The setting the master key came from, for error messages (never its value)."""
    if settings.master_key_file:
        return f"ASHIATO_MASTER_KEY_FILE ({settings.master_key_file})"
    if settings.master_key:
        return "ASHIATO_MASTER_KEY"
    return f"the development key file {DEV_KEY_FILE} (ASHIATO_DEV)"


@dataclass(slots=True)
class Parts:
    store: Store
    keystore: KeyStore
    keyring: KeyringSource
    keys: DataKeys
    personal: PersonalData
    vault: Vault
    identity: Identity
    audit: AuditLog
    requests: DataSubjectRequests
    retention: Retention
    matching: Resolution
    scoring: Scoring

    async def close(self) -> None:
        await self.store.close()
        await self.keystore.close()


async def open_parts(settings: Settings, *, migrate: bool = True) -> Parts:
    source = keyring_source(settings)
    store = open_store(settings.database_url)
    store.rollups_on = settings.rollups
    keystore = open_keystore(settings.keystore_url)
    if migrate:
        await store.migrate()
        await keystore.migrate()
    try:
        await check_master_key(source, keystore, setting=key_setting(settings))
    except BaseException:
        await store.close()
        await keystore.close()
        raise
    keys = DataKeys(source, keystore)
    personal = PersonalData(keys, source)
    vault = Vault(store, keys)

    async def site_secret(site: Site) -> bytes | None:
        if site.secret is None:
            return None
        return await vault.open("sites", "secret", str(site.id), site.secret)

    matching = Resolution(store, personal)
    identity = Identity(store, personal, site_secret=site_secret, matching=matching)
    audit = AuditLog(store, source, keystore)
    requests = DataSubjectRequests(
        store, keystore, keys, personal, audit, export_dir=Path(settings.export_dir)
    )
    retention = Retention(store, requests, audit, retention_policy(settings))
    return Parts(
        store, keystore, source, keys, personal, vault, identity, audit, requests, retention,
        matching, Scoring(store, personal),
    )  # fmt: skip


def retention_policy(settings: Settings) -> Policy:
    return Policy(
        {
            "events": settings.retention_events_days,
            "visitors": settings.retention_visitors_days,
            "leads": settings.retention_leads_days,
            "receipts": settings.retention_receipts_days,
        }
    )
