"""Retention: what is past its period, and purging it in small batches.

Each purge is its own short transaction of at most ``limit`` rows, so the collector's
writes interleave with a long purge. Dropping whole partitions of events is the
PostgreSQL backend's own (``postgres/partitions.py``); elsewhere there are none.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.storage.script import Script, count, rows, run, value
from tracker.storage.tables import Tables, rollups
from tracker.storage.tables.legal import NO_END


def purge_events(site_id: int, before: int, limit: int) -> Script[int]:
    # `at < ?` outside too, so PostgreSQL visits only the partitions that can hold such rows.
    purged = yield count(
        "DELETE FROM events WHERE at < ? AND id IN (SELECT id FROM events"
        " WHERE site_id = ? AND at < ? LIMIT ?)",
        before, site_id, before, limit,
    )  # fmt: skip
    if purged:
        yield from rollups.deleted()
    return int(purged)


def count_events_before(site_id: int, before: int) -> Script[int]:
    found = yield value("SELECT COUNT(*) FROM events WHERE site_id = ? AND at < ?", site_id, before)
    return int(found)


def idle_visitors(site_id: int, before: int, limit: int) -> Script[list[str]]:
    """Never-identified visitors of a site whose last activity is before ``before``
    (their last event, or their last consent decision), in one scan."""
    return (yield from _first_column(
        "SELECT vid FROM (SELECT vid, MAX(at) AS last FROM events WHERE site_id = ?"
        " GROUP BY vid UNION ALL SELECT vid, at FROM consent_state WHERE site_id = ?) AS a"
        " GROUP BY vid HAVING MAX(last) < ? AND vid NOT IN (SELECT vid FROM links) LIMIT ?",
        site_id, site_id, before, limit,
    ))  # fmt: skip


def purge_visitor_state(site_id: int, vids: Sequence[str]) -> Script[int]:
    before = yield from rollups.snapshot(vids)
    yield run("DELETE FROM events WHERE site_id = ? AND vid IN ?", site_id, list(vids))
    yield from rollups.settle(vids, before)
    purged = yield count(
        "DELETE FROM consent_state WHERE site_id = ? AND vid IN ?", site_id, list(vids)
    )
    return int(purged)


_PAST_RECEIPTS = (
    "FROM consent_receipts r WHERE r.site_id = ? AND r.at < ?"
    " AND r.id NOT IN (SELECT receipt_id FROM consent_state)"
)
"""Receipts past their own period, unless they are a visitor's current state."""


def purge_receipts(site_id: int, before: int, limit: int) -> Script[int]:
    purged = yield count(
        f"DELETE FROM consent_receipts WHERE id IN (SELECT r.id {_PAST_RECEIPTS} LIMIT ?)",
        site_id, before, limit,
    )  # fmt: skip
    return int(purged)


def count_receipts_before(site_id: int, before: int) -> Script[int]:
    found = yield value(f"SELECT COUNT(*) {_PAST_RECEIPTS}", site_id, before)
    return int(found)


def inactive_leads(before: int, limit: int) -> Script[list[str]]:
    """Unmerged leads unchanged since ``before`` with no event of theirs since then."""
    return (yield from _first_column(
        "SELECT l.id FROM leads l WHERE l.merged_into IS NULL AND l.updated_at < ?"
        " AND NOT EXISTS (SELECT 1 FROM links k JOIN events e ON e.vid = k.vid"
        " AND e.at >= k.valid_from AND e.at < COALESCE(k.ended_at, ?)"
        " WHERE k.lead_id = l.id AND e.at >= ?) LIMIT ?",
        before, NO_END, before, limit,
    ))  # fmt: skip


def _first_column(text: str, *args: Any) -> Script[list[str]]:
    found = yield rows(text, *args)
    return [r[0] for r in found]


class RetentionTables(Tables):
    """Retention purges and counts: mixed into each backend's store."""

    async def purge_events(self, site_id: int, before: int, *, limit: int) -> int:
        return await self.transact(partial(purge_events, site_id, before, limit))

    async def count_events_before(self, site_id: int, before: int) -> int:
        return await self.read(count_events_before(site_id, before))

    async def idle_visitors(self, site_id: int, before: int, *, limit: int) -> list[str]:
        return await self.read(idle_visitors(site_id, before, limit))

    async def purge_visitor_state(self, site_id: int, vids: Sequence[str]) -> int:
        return await self.transact(partial(purge_visitor_state, site_id, vids)) if vids else 0

    async def purge_receipts(self, site_id: int, before: int, *, limit: int) -> int:
        return await self.transact(partial(purge_receipts, site_id, before, limit))

    async def count_receipts_before(self, site_id: int, before: int) -> int:
        return await self.read(count_receipts_before(site_id, before))

    async def inactive_leads(self, before: int, *, limit: int) -> list[str]:
        return await self.read(inactive_leads(before, limit))
