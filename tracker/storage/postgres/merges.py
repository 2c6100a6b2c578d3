"""Merges of leads in PostgreSQL: recorded, reversible, each with its change-feed rows.

A merge or an unmerge holds the LEAD_GRAPH lock exclusively (links hold it shared), so
the chain of ``merged_into`` it reads cannot change under it, and locks both leads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import asyncpg

from tracker.errors import Conflict, NotFound
from tracker.storage.postgres.database import Lock, PostgresDatabase, lock
from tracker.storage.postgres.identity import bump, record_change, resolve
from tracker.storage.postgres.rows import MERGE_COLUMNS, marks, merge_from_row
from tracker.storage.records import Merge


class MergeTables(PostgresDatabase):
    """Mixed into PostgresStore."""

    async def merges_of(self, lead_ids: Sequence[str]) -> list[Merge]:
        rows = await self._read(
            f"SELECT {MERGE_COLUMNS} FROM merges WHERE into_lead = ANY($1::text[])"
            " OR from_lead = ANY($1::text[])",
            list(lead_ids),
        )
        found = [merge_from_row(r) for r in rows]
        return sorted({m.id: m for m in found}.values(), key=lambda m: (m.at, m.id))

    async def merge_leads(self, merge: Merge) -> None:
        await self._transaction(lambda db: _merge(merge, db))

    async def unmerge_leads(self, merge_id: str, *, actor: str, reason: str, at: int) -> Merge:
        return await self._transaction(lambda db: _unmerge(merge_id, actor, reason, at, db))

    async def open_merge(self, into_lead: str, from_lead: str) -> Merge | None:
        rows = await self._read(
            f"SELECT {MERGE_COLUMNS} FROM merges WHERE into_lead = $1 AND from_lead = $2"
            " AND undone_at IS NULL",
            into_lead, from_lead,
        )  # fmt: skip
        return merge_from_row(rows[0]) if rows else None


async def _merge(merge: Merge, db: asyncpg.Connection) -> None:
    await lock(db, Lock.LEAD_GRAPH)
    found = await db.fetch("SELECT id FROM leads WHERE id = ANY($1::text[]) FOR UPDATE",
                           [merge.into_lead, merge.from_lead])  # fmt: skip
    if len(found) < len({merge.into_lead, merge.from_lead}):
        raise NotFound("lead not found")
    if await resolve(db, merge.from_lead) != merge.from_lead:
        raise Conflict("that lead is already merged into another; unmerge it first")
    if await resolve(db, merge.into_lead) == merge.from_lead or merge.into_lead == merge.from_lead:
        raise Conflict("a lead cannot be merged into itself")
    await db.execute("UPDATE leads SET merged_into = $1,"
                     " updated_at = GREATEST(updated_at, $2) WHERE id = $3",
                     merge.into_lead, merge.at, merge.from_lead)  # fmt: skip
    await db.execute(f"INSERT INTO merges ({MERGE_COLUMNS}) VALUES ({marks(9)})",
                     *dataclasses.astuple(merge))  # fmt: skip
    root = await resolve(db, merge.into_lead)
    await bump(db, root, merge.at)
    data = {"lead": root, "merged": merge.from_lead, "merge": merge.id}
    await record_change(db, root, "merged", merge.at, data)
    await record_change(db, merge.from_lead, "merged", merge.at, data)


async def _unmerge(
    merge_id: str, actor: str, reason: str, at: int, db: asyncpg.Connection
) -> Merge:
    await lock(db, Lock.LEAD_GRAPH)
    row = await db.fetchrow(f"SELECT {MERGE_COLUMNS} FROM merges WHERE id = $1 FOR UPDATE",
                            merge_id)  # fmt: skip
    if row is None:
        raise NotFound("merge not found")
    merge = merge_from_row(row)
    if merge.undone_at is not None:
        raise Conflict("that merge was already undone")
    await db.execute("UPDATE leads SET merged_into = NULL,"
                     " updated_at = GREATEST(updated_at, $1) WHERE id = $2",
                     at, merge.from_lead)  # fmt: skip
    await db.execute("UPDATE merges SET undone_at = $1, undone_by = $2, undo_reason = $3"
                     " WHERE id = $4", at, actor, reason, merge_id)  # fmt: skip
    root = await resolve(db, merge.into_lead)
    await bump(db, root, at)
    data = {"lead": root, "unmerged": merge.from_lead, "merge": merge.id}
    await record_change(db, root, "unmerged", at, data)
    await record_change(db, merge.from_lead, "unmerged", at, data)
    return dataclasses.replace(merge, undone_at=at, undone_by=actor, undo_reason=reason)
