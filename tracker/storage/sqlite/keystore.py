"""The key store in SQLite: wrapped data keys in their own database file.

It is a separate file from the data on purpose (see ``tracker.storage.keystore``).
``secure_delete`` (set by the base for every connection) zeroes a deleted key's bytes in
the database pages, and truncating the WAL afterwards removes the copy the WAL held, so
a destroyed key leaves no trace in this file.
"""

from __future__ import annotations

from tracker.storage.sqlite.database import SQLiteDatabase
from tracker.storage.tables.keystore import KeyStoreTables


class SQLiteKeyStore(KeyStoreTables, SQLiteDatabase):
    """``KeyStore`` over one SQLite file."""

    migrations_folder = "keystore"
