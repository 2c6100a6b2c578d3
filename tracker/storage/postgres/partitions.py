"""Monthly partitions of ``events``: made ahead, made on demand, dropped when expired.

``events`` is partitioned by RANGE on ``at`` (ms since the epoch, UTC months), one
partition per month named ``events_yYYYYmMM``, plus ``events_default`` for whatever no
monthly partition covers. At start (under the migration lock) the previous, current and
next ``MONTHS_AHEAD`` months are made; a write for a later month (a server that ran
through them) makes its month first, in its own short transaction. Months before the
earliest monthly partition (backfilled history) go to the default partition rather than
growing a partition each, and so do absurd times. Retention drops a whole month at once
when every site's cutoff is past its end; the rest goes row by row.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg

from tracker.storage.postgres.database import Lock, lock

log = logging.getLogger("ashiato.postgres")

MONTHS_AHEAD = 3
ON_DEMAND_HORIZON = 12
"""A write makes partitions at most this many months past the current one."""
_NAME = re.compile(r"events_y(\d{4})m(\d{2})")
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def month_of(at: int) -> int | None:
    """The start (ms) of the UTC month holding ``at``; None outside years 1970-9999."""
    if not 0 <= at <= _LAST_MS:
        return None
    day = datetime.fromtimestamp(at / 1000, UTC)
    return int(datetime(day.year, day.month, 1, tzinfo=UTC).timestamp()) * 1000


def shift(month: int, months: int) -> int:
    day = datetime.fromtimestamp(month / 1000, UTC)
    index = day.year * 12 + day.month - 1 + months
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp()) * 1000


def name_of(month: int) -> str:
    day = datetime.fromtimestamp(month / 1000, UTC)
    return f"events_y{day.year:04d}m{day.month:02d}"


def _month_of_name(name: str) -> int | None:
    found = _NAME.fullmatch(name)
    if found is None:
        return None
    return int(datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC).timestamp()) * 1000


async def existing(conn: asyncpg.Connection) -> set[int]:
    """The months that have a partition now."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass"
    )
    return {m for r in rows if (m := _month_of_name(r[0])) is not None}


async def create(conn: asyncpg.Connection, months: Iterable[int]) -> None:
    """Make these months' partitions (if missing), in the caller's transaction.

    Names and bounds are built from integers only. Creating one checks the default
    partition for rows of that month (it has none: such months never went there)."""
    await lock(conn, Lock.PARTITIONS)
    for month in sorted(months):
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {name_of(month)} PARTITION OF events"
            f" FOR VALUES FROM ({month}) TO ({shift(month, 1)})"
        )


def ahead(now_ms: int) -> list[int]:
    """The months made at start: the previous one, this one and MONTHS_AHEAD more."""
    current = month_of(now_ms)
    assert current is not None
    return [shift(current, n) for n in range(-1, MONTHS_AHEAD + 1)]


class Months:
    """What one process knows of the partitions, so a write asks the catalog rarely."""

    def __init__(self) -> None:
        self.known: set[int] | None = None

    def missing(self, ats: Iterable[int], now_ms: int | None = None) -> set[int]:
        """Months of ``ats`` that should get a partition before the write (needs ``known``)."""
        assert self.known is not None
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        current = month_of(now)
        assert current is not None
        floor = min(self.known, default=shift(current, -1))
        horizon = shift(current, ON_DEMAND_HORIZON)
        months = {m for at in ats if (m := month_of(at)) is not None}
        return {m for m in months if m not in self.known and floor <= m <= horizon}


async def drop_expired(conn: asyncpg.Connection, before: int) -> tuple[int, list[int]]:
    """Drop the monthly partitions that end at or before ``before``, each in its own
    transaction; return (events dropped, months dropped). One that cannot be locked in
    time (busy) is left for the next run; the row-by-row purge covers it meanwhile."""
    dropped, months = 0, []
    for month in sorted(await existing(conn)):
        if shift(month, 1) > before:
            break
        try:
            async with conn.transaction():
                await lock(conn, Lock.PARTITIONS)
                name = name_of(month)
                await conn.execute(f"LOCK TABLE {name} IN SHARE MODE")  # no new rows
                count = int(await conn.fetchval(f"SELECT COUNT(*) FROM {name}"))
                await conn.execute(f"DROP TABLE {name}")
        except asyncpg.LockNotAvailableError:
            log.warning("partition busy, left for the next run", extra={"month": month})
            continue
        dropped += count
        months.append(month)
    return dropped, months
