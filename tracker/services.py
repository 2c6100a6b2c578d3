"""What a running server holds: built in the app's lifespan, reached via app state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from identity.service import Identity
from privacy.audit import AuditLog
from privacy.dsr import DataSubjectRequests
from privacy.personal import PersonalData
from privacy.retention import Retention
from privacy.vault import Vault
from tracker.assets import Asset
from tracker.metrics import Metrics
from tracker.ordering import VisitorClock
from tracker.ratelimit import Limiter
from tracker.settings import Settings
from tracker.sites import SiteDirectory
from tracker.storage import Store
from tracker.storage.keystore import KeyStore
from tracker.webhooks import Deliverer
from tracker.wiring import Parts
from tracker.write_keys import WriteKeyDirectory
from tracker.writer import Writer


@dataclass(slots=True)
class Limits:
    ip: Limiter
    site: Limiter
    api: Limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            Limiter(settings.rate_ip, settings.rate_ip_burst, scope="ip"),
            Limiter(settings.rate_site, settings.rate_site_burst, scope="site"),
            Limiter(settings.rate_api, settings.rate_api_burst, scope="api"),
        )


@dataclass(slots=True)
class Services:
    settings: Settings
    parts: Parts
    sites: SiteDirectory
    writer: Writer
    metrics: Metrics
    tag: Asset
    webhooks: Deliverer
    limits: Limits
    write_keys: WriteKeyDirectory
    clock: VisitorClock = field(default_factory=VisitorClock)
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.parts.store

    @property
    def keystore(self) -> KeyStore:
        return self.parts.keystore

    @property
    def personal(self) -> PersonalData:
        return self.parts.personal

    @property
    def vault(self) -> Vault:
        return self.parts.vault

    @property
    def identity(self) -> Identity:
        return self.parts.identity

    @property
    def audit(self) -> AuditLog:
        return self.parts.audit

    @property
    def requests(self) -> DataSubjectRequests:
        return self.parts.requests

    @property
    def retention(self) -> Retention:
        return self.parts.retention
