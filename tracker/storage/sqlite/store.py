"""ashiato's data in SQLite: the Store protocol over one ``SQLiteDatabase``."""

from __future__ import annotations

from tracker.storage.sqlite.database import SQLiteDatabase
from tracker.storage.tables.store import StoreTables


class SQLiteStore(StoreTables, SQLiteDatabase):
    """ashiato's data in one SQLite file: the shared tables over its database."""

    migrations_folder = "sqlite"
