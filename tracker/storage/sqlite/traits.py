"""A lead's sealed traits in SQLite, and the submission records kept beside them.

Which values a claim may write is decided in ``identity.claims``; here an update is
applied as one compare-and-set, so a value that another writer put in between the read
and this write is never overwritten by a fill meant for an empty trait.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from tracker.storage.records import Submission
from tracker.storage.sqlite.database import SQLiteDatabase
from tracker.storage.sqlite.identity import record_change

_LEAD_TRAIT_COLUMNS = frozenset({"name", "company", "phone", "fields"})
SUBMISSION_COLUMNS = "id, lead_id, vid, site_id, form, at, claim"


def _update(
    db: sqlite3.Connection,
    lead_id: str,
    columns: dict[str, bytes | None],
    at: int,
    expected: dict[str, bytes | None],
) -> bool:
    sets = ", ".join(f"{c} = ?" for c in columns)
    checks = "".join(f" AND {c} IS ?" for c in expected)
    changed = db.execute(
        f"UPDATE leads SET {sets}, updated_at = max(updated_at, ?) WHERE id = ?{checks}",
        (*columns.values(), at, lead_id, *expected.values()),
    ).rowcount
    if changed:
        record_change(db, lead_id, "updated", at, {"lead": lead_id})
    return bool(changed)


def submission_from_row(row: Sequence[Any]) -> Submission:
    id_, lead_id, vid, site_id, form, at, claim = row
    return Submission(id_, lead_id, vid, site_id, form, at, bytes(claim))


class TraitTables(SQLiteDatabase):
    """Mixed into SQLiteStore."""

    async def update_lead_fields(
        self,
        lead_id: str,
        columns: dict[str, bytes | None],
        at: int,
        *,
        expected: dict[str, bytes | None] | None = None,
    ) -> bool:
        assert set(columns) | set(expected or {}) <= _LEAD_TRAIT_COLUMNS
        if not columns:
            return False
        return await self._write(lambda db: _update(db, lead_id, columns, at, expected or {}))

    async def add_submission(self, submission: Submission) -> None:
        s = submission
        await self._write(lambda db: db.execute(
            f"INSERT INTO submissions ({SUBMISSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (s.id, s.lead_id, s.vid, s.site_id, s.form, s.at, s.claim),
        ))  # fmt: skip

    async def submissions_of(self, lead_ids: Sequence[str]) -> list[Submission]:
        found: list[Submission] = []
        ordered = list(dict.fromkeys(lead_ids))
        for start in range(0, len(ordered), 400):
            chunk = ordered[start : start + 400]
            rows = await self._read(
                f"SELECT {SUBMISSION_COLUMNS} FROM submissions"
                f" WHERE lead_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.extend(submission_from_row(r) for r in rows)
        return sorted(found, key=lambda s: (s.at, s.id))
