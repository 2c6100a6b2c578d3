"""ashiato's data in SQLite: the Store protocol over one ``SQLiteDatabase``."""

from __future__ import annotations

from tracker.storage.sqlite.database import SQLiteDatabase
from tracker.storage.tables.access import AccessTables
from tracker.storage.tables.audit import AuditTables
from tracker.storage.tables.events import EventTables
from tracker.storage.tables.identity import IdentityTables
from tracker.storage.tables.legal import LegalTables
from tracker.storage.tables.merges import MergeTables
from tracker.storage.tables.retention import RetentionTables
from tracker.storage.tables.sites import SiteTables
from tracker.storage.tables.traits import TraitTables


class SQLiteStore(
    SiteTables,
    EventTables,
    IdentityTables,
    TraitTables,
    MergeTables,
    AccessTables,
    LegalTables,
    RetentionTables,
    AuditTables,
    SQLiteDatabase,
):
    """ashiato's data in one SQLite file: the shared tables over its database."""

    migrations_folder = "sqlite"
