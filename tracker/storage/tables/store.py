"""Every area's methods together: the ``Store`` protocol, less the database class that a
backend's store class puts under it (``SQLiteStore``, ``PostgresStore``)."""

from __future__ import annotations

from tracker.storage.tables.access import AccessTables
from tracker.storage.tables.audit import AuditTables
from tracker.storage.tables.browsing import BrowsingTables
from tracker.storage.tables.catchup import RollupTables
from tracker.storage.tables.console import ConsoleTables
from tracker.storage.tables.disclosure import DisclosureTables
from tracker.storage.tables.events import EventTables
from tracker.storage.tables.identity import IdentityTables
from tracker.storage.tables.ledger import LedgerTables
from tracker.storage.tables.legal import LegalTables
from tracker.storage.tables.matching import MatchingTables
from tracker.storage.tables.merges import MergeTables
from tracker.storage.tables.reports import ReportTables
from tracker.storage.tables.retention import RetentionTables
from tracker.storage.tables.scoring import ScoringTables
from tracker.storage.tables.serverside import ServerSideTables
from tracker.storage.tables.sites import SiteTables
from tracker.storage.tables.traits import TraitTables


class StoreTables(
    SiteTables,
    EventTables,
    IdentityTables,
    TraitTables,
    MergeTables,
    MatchingTables,
    AccessTables,
    LegalTables,
    RetentionTables,
    AuditTables,
    ScoringTables,
    LedgerTables,
    ConsoleTables,
    DisclosureTables,
    ServerSideTables,
    RollupTables,
    ReportTables,
    BrowsingTables,
):
    """The shared mixins, in one place for both stores."""
