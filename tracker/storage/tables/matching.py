"""名寄せ: leads' match keys and the pairs marked "not the same", for both databases.

A lead's keys are replaced whole, and only while its sealed traits are still the ones
they were computed from (compared as stored: a ciphertext is never sealed twice the
same), with the lead's row locked, so keys computed from traits that another writer
has replaced meanwhile are never written over that writer's. Which pairs are
duplicates is decided in ``identity.duplicates``, on what ``match_candidates`` reads.
Keys and dismissals hold the LEAD_GRAPH lock shared, as links do: an erasure (holding
it exclusively) deletes them with the lead.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from tracker.storage.records import LeadRow, MatchCandidates
from tracker.storage.rows import LEAD_COLUMNS, lead_from_row
from tracker.storage.script import Insert, Lock, LockName, Script, rows, run, value
from tracker.storage.tables import Tables

CHUNK = 500
"""Ids per ``IN ?`` list (SQLite binds each as its own variable)."""
SEALED_COLUMNS = frozenset({"email", "name", "company", "phone", "fields"})


def set_match_keys(
    lead_id: str, keys: Sequence[tuple[str, bytes]], version: int, sealed: dict[str, bytes | None]
) -> Script[bool]:
    yield Lock(LockName.LEAD_GRAPH, shared=True)
    checks = "".join(f" AND {c} IS NOT DISTINCT FROM ?" for c in sealed)
    same = yield value(f"SELECT 1 FROM leads WHERE id = ?{checks} FOR NO KEY UPDATE",
                       lead_id, *sealed.values())  # fmt: skip
    if same is None:
        return False
    yield run("DELETE FROM match_keys WHERE lead_id = ?", lead_id)
    rows_ = sorted({(lead_id, kind, bytes(v), version) for kind, v in keys})
    yield Insert("match_keys", ("lead_id", "kind", "value", "version"), rows_)
    return True


def leads_without_keys(version: int, after: str, limit: int) -> Script[list[LeadRow]]:
    found = yield rows(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE id > ? AND NOT EXISTS (SELECT 1 FROM"
        " match_keys m WHERE m.lead_id = leads.id AND m.version = ?) ORDER BY id LIMIT ?",
        after, version, limit,
    )  # fmt: skip
    return [lead_from_row(r) for r in found]


def count_without_keys(version: int) -> Script[int]:
    n = yield value("SELECT COUNT(*) FROM leads WHERE NOT EXISTS (SELECT 1 FROM match_keys m"
                    " WHERE m.lead_id = leads.id AND m.version = ?)", version)  # fmt: skip
    return int(n or 0)


def match_candidates(kinds: Sequence[str], max_shared: int, limit: int) -> Script[MatchCandidates]:
    """Pairs of leads sharing a key of ``kinds``, kind by kind in the order given, at most
    ``limit`` (so the kinds named first are never crowded out), each key held by at most
    ``max_shared`` leads (a key nearly everyone has, such as a big company's name,
    proposes no pair by itself)."""
    pairs: dict[tuple[str, str], None] = {}
    for kind in kinds:
        if len(pairs) >= limit:
            break
        found = yield rows(
            "SELECT a.lead_id, b.lead_id FROM (SELECT value FROM match_keys WHERE kind = ?"
            " GROUP BY value HAVING COUNT(*) BETWEEN 2 AND ?) g"
            " JOIN match_keys a ON a.kind = ? AND a.value = g.value"
            " JOIN match_keys b ON b.kind = ? AND b.value = g.value AND b.lead_id > a.lead_id"
            " LIMIT ?",
            kind, max_shared, kind, kind, limit - len(pairs),
        )  # fmt: skip
        pairs.update(((str(a), str(b)), None) for a, b in found)
    merged = yield rows("SELECT id, merged_into FROM leads WHERE merged_into IS NOT NULL")
    ids = sorted({i for pair in pairs for i in pair} | {str(i) for r in merged for i in r})
    leads: dict[str, tuple[str | None, int]] = {}
    keys: list[tuple[str, str, bytes]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for id_, into, at in (yield rows("SELECT id, merged_into, created_at FROM leads"
                                         " WHERE id IN ?", chunk)):  # fmt: skip
            leads[id_] = (into, int(at))
        for lead_id, kind, key in (yield rows("SELECT lead_id, kind, value FROM match_keys"
                                              " WHERE lead_id IN ?", chunk)):  # fmt: skip
            keys.append((lead_id, kind, bytes(key)))
    dismissed = yield rows("SELECT lead_a, lead_b FROM duplicate_dismissals")
    return MatchCandidates(list(pairs), leads, keys, [(str(a), str(b)) for a, b in dismissed])


def dismiss_pair(lead_a: str, lead_b: str, actor: str, at: int) -> Script[bool]:
    """Record the pair as "not the same" (once); False if either lead is gone."""
    yield Lock(LockName.LEAD_GRAPH, shared=True)
    first, second = sorted((lead_a, lead_b))
    found = yield value("SELECT COUNT(*) FROM leads WHERE id IN ?", [first, second])
    if first == second or found != 2:
        return False
    yield run("INSERT INTO duplicate_dismissals (lead_a, lead_b, actor, at) VALUES (?, ?, ?, ?)"
              " ON CONFLICT DO NOTHING", first, second, actor, at)  # fmt: skip
    return True


def erase_matching(leads: list[str]) -> Script[None]:
    """Part of an erasure (``tables.legal``): the leads' keys and dismissals go too."""
    yield run("DELETE FROM match_keys WHERE lead_id IN ?", leads)
    yield run("DELETE FROM duplicate_dismissals WHERE lead_a IN ? OR lead_b IN ?", leads, leads)


class MatchingTables(Tables):
    """Match keys and dismissals: mixed into both stores."""

    async def set_match_keys(
        self,
        lead_id: str,
        keys: Sequence[tuple[str, bytes]],
        *,
        version: int,
        sealed: dict[str, bytes | None],
    ) -> bool:
        """Replace the lead's keys if its sealed columns still hold ``sealed``."""
        assert keys
        assert set(sealed) <= SEALED_COLUMNS
        return await self.transact(partial(set_match_keys, lead_id, keys, version, sealed))

    async def leads_without_keys(self, version: int, *, after: str, limit: int) -> list[LeadRow]:
        """Leads (by id, after ``after``) that have no keys of this version."""
        return await self.read(leads_without_keys(version, after, limit))

    async def count_without_keys(self, version: int) -> int:
        return await self.read(count_without_keys(version))

    async def match_candidates(
        self, kinds: Sequence[str], *, max_shared: int, limit: int
    ) -> MatchCandidates:
        return await self.read(match_candidates(kinds, max_shared, limit))

    async def dismiss_pair(self, lead_a: str, lead_b: str, *, actor: str, at: int) -> bool:
        return await self.transact(partial(dismiss_pair, lead_a, lead_b, actor, at))
