"""The key store in PostgreSQL: wrapped data keys in their own database.

It is a separate database from the data on purpose (see ``tracker.storage.keystore``):
another database on the same server at least (``…/ashiato_keys``), better another
server, backed up on its own schedule. A deleted key's row stays in the table file as
a dead tuple until VACUUM (autovacuum is set to visit this table after any change) and
in the WAL until it is recycled; it is wrapped by a KEK there, so rotating and retiring
the KEK (``ashiato keys rotate``, ``keys retire``) makes every such remnant, and every
older backup of this database, unreadable for good.
"""

from __future__ import annotations

from tracker.storage.postgres.database import PostgresDatabase
from tracker.storage.tables.keystore import KeyStoreTables


class PostgresKeyStore(KeyStoreTables, PostgresDatabase):
    """``KeyStore`` over one PostgreSQL database."""

    migrations_folder = "postgres_keystore"
