"""A lead's sealed traits, and the submission records kept beside them.

Which values a claim may write is decided in ``identity.claims``; here an update is
applied as one compare-and-set (``IS NOT DISTINCT FROM`` the value read), so a value
that another writer put in between the read and this write is never overwritten by a
fill meant for an empty trait. On PostgreSQL the row lock the UPDATE takes orders it
after that other collector's commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.storage.records import Submission
from tracker.storage.script import Script, count, rows, run
from tracker.storage.tables import Tables
from tracker.storage.tables.changes import record_change

LEAD_TRAIT_COLUMNS = frozenset({"name", "company", "phone", "fields"})
SUBMISSION_COLUMNS = "id, lead_id, vid, site_id, form, at, claim"


def update_lead_fields(
    lead_id: str, columns: dict[str, bytes | None], at: int, expected: dict[str, bytes | None]
) -> Script[bool]:
    sets = ", ".join(f"{c} = ?" for c in columns)
    checks = "".join(f" AND {c} IS NOT DISTINCT FROM ?" for c in expected)
    changed = yield count(
        f"UPDATE leads SET {sets}, updated_at = GREATEST(updated_at, ?) WHERE id = ?{checks}",
        *columns.values(), at, lead_id, *expected.values(),
    )  # fmt: skip
    if changed:
        # Its 名寄せ match keys were computed from the old traits: gone with them, in this
        # transaction, so a lead's keys are current or absent (absent ones are computed
        # again: identity.resolution).
        yield run("DELETE FROM match_keys WHERE lead_id = ?", lead_id)
        yield from record_change(lead_id, "updated", at, {"lead": lead_id})
    return bool(changed)


def add_submission(s: Submission) -> Script[None]:
    yield run(f"INSERT INTO submissions ({SUBMISSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
              s.id, s.lead_id, s.vid, s.site_id, s.form, s.at, s.claim)  # fmt: skip


def submission_from_row(row: Sequence[Any]) -> Submission:
    id_, lead_id, vid, site_id, form, at, claim = row
    return Submission(id_, lead_id, vid, site_id, form, at, bytes(claim))


def submissions_of(lead_ids: Sequence[str]) -> Script[list[Submission]]:
    found = yield rows(f"SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE lead_id IN ?"
                       " ORDER BY at, id", list(lead_ids))  # fmt: skip
    return [submission_from_row(r) for r in found]


class TraitTables(Tables):
    """Traits and submissions: mixed into both stores."""

    async def update_lead_fields(
        self,
        lead_id: str,
        columns: dict[str, bytes | None],
        at: int,
        *,
        expected: dict[str, bytes | None] | None = None,
    ) -> bool:
        assert set(columns) | set(expected or {}) <= LEAD_TRAIT_COLUMNS
        if not columns:
            return False
        return await self.transact(
            partial(update_lead_fields, lead_id, columns, at, expected or {})
        )

    async def add_submission(self, submission: Submission) -> None:
        await self.transact(partial(add_submission, submission))

    async def submissions_of(self, lead_ids: Sequence[str]) -> list[Submission]:
        """The leads' submission records, oldest first."""
        return await self.read(submissions_of(lead_ids))
