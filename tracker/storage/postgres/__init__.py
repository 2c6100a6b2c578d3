"""The PostgreSQL backend: many collector processes on one database."""

from tracker.storage.postgres.database import PostgresDatabase
from tracker.storage.postgres.keystore import PostgresKeyStore
from tracker.storage.postgres.store import PostgresStore

__all__ = ["PostgresDatabase", "PostgresKeyStore", "PostgresStore"]
