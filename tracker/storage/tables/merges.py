"""Merges of leads: recorded, reversible, each with its change-feed rows.

Whether a merge or an unmerge may be applied is decided in ``identity.merging``
(``MergeRules``), on what this transaction reads. A merge or an unmerge holds the
LEAD_GRAPH lock exclusively (links hold it shared), so the chain of ``merged_into`` it
reads cannot change under it, and locks the rows it changes (PostgreSQL).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial

from tracker.storage.records import Merge, MergeRules
from tracker.storage.rows import MERGE_COLUMNS, merge_from_row
from tracker.storage.script import Lock, LockName, Script, row, rows, run
from tracker.storage.tables import Tables
from tracker.storage.tables.changes import record_change, resolve
from tracker.storage.tables.identity import bump


def merge_leads(merge: Merge, rules: MergeRules) -> Script[None]:
    yield Lock(LockName.LEAD_GRAPH)
    found = yield rows("SELECT id FROM leads WHERE id IN ? FOR UPDATE",
                       (merge.into_lead, merge.from_lead))  # fmt: skip
    from_root = yield from resolve(merge.from_lead)
    into_root = yield from resolve(merge.into_lead)
    rules.admit_merge(merge, {r[0] for r in found}, from_root, into_root)
    yield run("UPDATE leads SET merged_into = ?, updated_at = GREATEST(updated_at, ?)"
              " WHERE id = ?", merge.into_lead, merge.at, merge.from_lead)  # fmt: skip
    yield run(f"INSERT INTO merges ({MERGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
              *dataclasses.astuple(merge))  # fmt: skip
    root = yield from resolve(merge.into_lead)
    yield from bump(root, merge.at)
    data = {"lead": root, "merged": merge.from_lead, "merge": merge.id}
    yield from record_change(root, "merged", merge.at, data)
    yield from record_change(merge.from_lead, "merged", merge.at, data)


def unmerge_leads(
    merge_id: str, actor: str, reason: str, at: int, rules: MergeRules
) -> Script[Merge]:
    yield Lock(LockName.LEAD_GRAPH)
    found = yield row(f"SELECT {MERGE_COLUMNS} FROM merges WHERE id = ? FOR UPDATE", merge_id)
    merge = rules.admit_unmerge(None if found is None else merge_from_row(found))
    yield run("UPDATE leads SET merged_into = NULL, updated_at = GREATEST(updated_at, ?)"
              " WHERE id = ?", at, merge.from_lead)  # fmt: skip
    yield run("UPDATE merges SET undone_at = ?, undone_by = ?, undo_reason = ? WHERE id = ?",
              at, actor, reason, merge_id)  # fmt: skip
    root = yield from resolve(merge.into_lead)
    yield from bump(root, at)
    data = {"lead": root, "unmerged": merge.from_lead, "merge": merge.id}
    yield from record_change(root, "unmerged", at, data)
    yield from record_change(merge.from_lead, "unmerged", at, data)
    return dataclasses.replace(merge, undone_at=at, undone_by=actor, undo_reason=reason)


def open_merge(into_lead: str, from_lead: str) -> Script[Merge | None]:
    found = yield row(f"SELECT {MERGE_COLUMNS} FROM merges WHERE into_lead = ?"
                      " AND from_lead = ? AND undone_at IS NULL", into_lead, from_lead)  # fmt: skip
    return None if found is None else merge_from_row(found)


def merges_of(lead_ids: Sequence[str]) -> Script[list[Merge]]:
    ids = list(lead_ids)
    found = yield rows(f"SELECT {MERGE_COLUMNS} FROM merges WHERE into_lead IN ?"
                       " OR from_lead IN ?", ids, ids)  # fmt: skip
    return sorted((merge_from_row(r) for r in found), key=lambda m: (m.at, m.id))


class MergeTables(Tables):
    """Merges: mixed into both stores."""

    async def merge_leads(self, merge: Merge, rules: MergeRules) -> None:
        await self.transact(partial(merge_leads, merge, rules))

    async def unmerge_leads(
        self, merge_id: str, *, actor: str, reason: str, at: int, rules: MergeRules
    ) -> Merge:
        return await self.transact(partial(unmerge_leads, merge_id, actor, reason, at, rules))

    async def open_merge(self, into_lead: str, from_lead: str) -> Merge | None:
        return await self.read(open_merge(into_lead, from_lead))

    async def merges_of(self, lead_ids: Sequence[str]) -> list[Merge]:
        return await self.read(merges_of(lead_ids))
