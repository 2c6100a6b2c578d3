"""The SQLite backend."""

from tracker.storage.sqlite.database import SQLiteDatabase
from tracker.storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteDatabase", "SQLiteStore"]
