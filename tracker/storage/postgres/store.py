"""ashiato's data in PostgreSQL: the Store protocol over one ``PostgresDatabase``.

The shared tables, plus the upkeep of the monthly partitions of ``events``: made ahead
at start (under the migration lock), and, when a month turned over since, before the
batch that needs one; dropped whole by retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import asyncpg

from tracker.storage.postgres import partitions
from tracker.storage.postgres.database import PostgresDatabase, guard, now_ms
from tracker.storage.records import ConsentRules, Event, WriteItem, WriteResult
from tracker.storage.tables.store import StoreTables


class PostgresStore(StoreTables, PostgresDatabase):
    """ashiato's data in one PostgreSQL database, shared by any number of collectors."""

    migrations_folder = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._months = partitions.Months()

    async def _after_migrate(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await partitions.create(conn, partitions.ahead(now_ms()))
        self._months.known = await partitions.existing(conn)

    async def write_batch(self, items: Sequence[WriteItem], rules: ConsentRules) -> WriteResult:
        await self._make_partitions([item.at for item in items if isinstance(item, Event)])
        return await super().write_batch(items, rules)

    async def _make_partitions(self, ats: list[int]) -> None:
        """Make the partitions a batch needs and lacks (rare: a month turned over)."""
        if not ats:
            return
        if self._months.known is None:
            self._months.known = await self._transaction(partitions.existing)
        if missing := self._months.missing(ats):
            await self._transaction(partial(_create_partitions, missing))
            self._months.known |= missing

    async def drop_expired_partitions(self, before: int) -> int:
        """Drop whole monthly partitions of events that end at or before ``before``."""

        async def drop() -> int:
            async with (await self.pool()).acquire() as conn:
                dropped, months = await partitions.drop_expired(conn, before)
            if self._months.known is not None:
                self._months.known -= set(months)
            return dropped

        return await guard(drop())


async def _create_partitions(months: set[int], db: asyncpg.Connection) -> None:
    await partitions.create(db, months)
