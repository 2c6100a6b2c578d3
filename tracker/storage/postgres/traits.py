"""A lead's sealed traits in PostgreSQL, and the submission records kept beside them.

Which values a claim may write is decided in ``identity.claims``; here an update is
applied as one compare-and-set (``IS NOT DISTINCT FROM`` the value read), so a value
another collector wrote in between is never overwritten by a fill meant for an empty
trait. The row lock the UPDATE takes orders it after that collector's commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from tracker.storage.postgres.database import PostgresDatabase
from tracker.storage.postgres.dialect import count_of
from tracker.storage.postgres.identity import record_change
from tracker.storage.postgres.rows import marks
from tracker.storage.records import Submission

_LEAD_TRAIT_COLUMNS = frozenset({"name", "company", "phone", "fields"})
SUBMISSION_COLUMNS = "id, lead_id, vid, site_id, form, at, claim"


async def _update(
    db: asyncpg.Connection,
    lead_id: str,
    columns: dict[str, bytes | None],
    at: int,
    expected: dict[str, bytes | None],
) -> bool:
    n = len(columns)
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=1))
    checks = "".join(
        f" AND {c} IS NOT DISTINCT FROM ${i}::bytea" for i, c in enumerate(expected, start=n + 3)
    )
    changed = count_of(await db.execute(
        f"UPDATE leads SET {sets}, updated_at = GREATEST(updated_at, ${n + 1})"
        f" WHERE id = ${n + 2}{checks}",
        *columns.values(), at, lead_id, *expected.values(),
    ))  # fmt: skip
    if changed:
        await record_change(db, lead_id, "updated", at, {"lead": lead_id})
    return bool(changed)


def submission_from_row(row: Sequence[Any]) -> Submission:
    id_, lead_id, vid, site_id, form, at, claim = row
    return Submission(id_, lead_id, vid, site_id, form, at, bytes(claim))


class TraitTables(PostgresDatabase):
    """Mixed into PostgresStore."""

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
        return await self._transaction(lambda db: _update(db, lead_id, columns, at, expected or {}))

    async def add_submission(self, submission: Submission) -> None:
        s = submission
        await self._execute(
            f"INSERT INTO submissions ({SUBMISSION_COLUMNS}) VALUES ({marks(7)})",
            s.id, s.lead_id, s.vid, s.site_id, s.form, s.at, s.claim,
        )  # fmt: skip

    async def submissions_of(self, lead_ids: Sequence[str]) -> list[Submission]:
        rows = await self._read(
            f"SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE lead_id = ANY($1::text[])"
            " ORDER BY at, id",
            list(lead_ids),
        )
        return [submission_from_row(r) for r in rows]
