"""What the console's lead list reads, written once for both databases: the newest
leads (of a site), leads holding a match key (a company searched by its 名寄せ key),
their score states, and when their browsers were last seen.

Reads only; what a grade or a score means is decided in ``scoring``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracker.storage.records import LeadRow, ScoreState
from tracker.storage.rows import LEAD_COLUMNS, lead_from_row
from tracker.storage.script import Script, rows
from tracker.storage.tables import Tables
from tracker.storage.tables.scoring import STATE_COLUMNS, state_from_row


def recent_leads(sites: Sequence[int] | None, before: tuple[int, str] | None, limit: int
                 ) -> Script[list[LeadRow]]:  # fmt: skip
    """Unmerged leads, the latest changed first (of those linked on ``sites``)."""
    clauses: list[str] = ["merged_into IS NULL"]
    args: list[object] = []
    if sites is not None:
        clauses.append("EXISTS (SELECT 1 FROM links k WHERE k.lead_id = leads.id"
                       " AND k.site_id IN ?)")  # fmt: skip
        args.append(list(sites))
    if before is not None:
        clauses.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
        args += [before[0], before[0], before[1]]
    found = yield rows(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE {' AND '.join(clauses)}"
        " ORDER BY updated_at DESC, id DESC LIMIT ?",
        *args, limit,
    )  # fmt: skip
    return [lead_from_row(r) for r in found]


def leads_with_key(kind: str, value: bytes, limit: int) -> Script[list[str]]:
    found = yield rows("SELECT DISTINCT lead_id FROM match_keys WHERE kind = ? AND value = ?"
                       " ORDER BY lead_id LIMIT ?", kind, value, limit)  # fmt: skip
    return [str(r[0]) for r in found]


def score_states(lead_ids: Sequence[str]) -> Script[list[ScoreState]]:
    if not lead_ids:
        return []
    found = yield rows(f"SELECT {STATE_COLUMNS} FROM lead_scores WHERE lead_id IN ?",
                       list(lead_ids))  # fmt: skip
    return [state_from_row(r) for r in found]


def last_seen(lead_ids: Sequence[str], sites: Sequence[int] | None) -> Script[dict[str, int]]:
    """The latest event of each lead's linked browsers within their links' time ranges
    (on ``sites``, if named)."""
    if not lead_ids:
        return {}
    on_sites, args = ("", ()) if sites is None else (" AND e.site_id IN ?", (list(sites),))
    found = yield rows(
        "SELECT k.lead_id, MAX(e.at) FROM links k JOIN events e ON e.vid = k.vid"
        " AND e.at >= k.valid_from AND (k.ended_at IS NULL OR e.at < k.ended_at)"
        f" WHERE k.lead_id IN ?{on_sites} GROUP BY k.lead_id",
        list(lead_ids), *args,
    )  # fmt: skip
    return {str(lead): int(at) for lead, at in found if at is not None}


def recent_visitors(site_id: int, since: int, limit: int) -> Script[list[tuple[str, int, int]]]:
    """Visitors with events on the site since ``since``: (vid, last seen, events), the
    latest first (the dashboard's "on the site now")."""
    # Materialized first: grouped straight from the table, SQLite's planner walks the
    # whole events_by_visitor index (for the GROUP BY) instead of the last minutes by time.
    found = yield rows(
        "WITH recent AS MATERIALIZED (SELECT vid, at FROM events WHERE site_id = ? AND at >= ?)"
        " SELECT vid, MAX(at), COUNT(*) FROM recent GROUP BY vid ORDER BY MAX(at) DESC, vid"
        " LIMIT ?",
        site_id, since, limit,
    )  # fmt: skip
    return [(str(vid), int(at), int(n)) for vid, at, n in found]


def leads_of_visitors(vids: Sequence[str], at: int) -> Script[dict[str, str]]:
    """The lead each visitor is linked to at ``at`` (its current link)."""
    if not vids:
        return {}
    found = yield rows(
        "SELECT vid, lead_id FROM links WHERE vid IN ? AND valid_from <= ?"
        " AND (ended_at IS NULL OR ended_at > ?)",
        list(vids), at, at,
    )  # fmt: skip
    return {str(vid): str(lead) for vid, lead in found}


class BrowsingTables(Tables):
    """The console's lead list: mixed into both stores."""

    async def recent_leads(
        self, *, sites: Sequence[int] | None, before: tuple[int, str] | None = None, limit: int
    ) -> list[LeadRow]:
        return await self.read(recent_leads(sites, before, limit))

    async def leads_with_key(self, kind: str, value: bytes, *, limit: int) -> list[str]:
        return await self.read(leads_with_key(kind, value, limit))

    async def score_states(self, lead_ids: Sequence[str]) -> list[ScoreState]:
        return await self.read(score_states(lead_ids))

    async def last_seen(
        self, lead_ids: Sequence[str], *, sites: Sequence[int] | None = None
    ) -> dict[str, int]:
        return await self.read(last_seen(lead_ids, sites))

    async def recent_visitors(
        self, site_id: int, *, since: int, limit: int
    ) -> list[tuple[str, int, int]]:
        return await self.read(recent_visitors(site_id, since, limit))

    async def leads_of_visitors(self, vids: Sequence[str], *, at: int) -> dict[str, str]:
        return await self.read(leads_of_visitors(vids, at))
