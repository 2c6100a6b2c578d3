"""The rules' versions, reading the points ledger, manual adjustments, rescoring, and the
scorer's place in the change feed: written once for both databases (see ``tables.scoring``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.storage.records import LeadScore, Rescored, ScoreEntry, ScoreState, ScoringRules
from tracker.storage.rows import EVENT_COLUMNS, LINK_COLUMNS, event_from_row, link_from_row
from tracker.storage.script import Script, row, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.changes import resolve
from tracker.storage.tables.identity import NO_END
from tracker.storage.tables.scoring import (
    ENTRY_SELECT,
    STATE_COLUMNS,
    append,
    counted_entries,
    entry_from_row,
    lock_state,
    settle,
    state_from_row,
)


# -- rules ---------------------------------------------------------------------------
def put_rules(site_id: int, document: str, actor: str, at: int) -> Script[int]:
    latest = yield value("SELECT MAX(version) FROM scoring_rules WHERE site_id = ?", site_id)
    version = int(latest or 0) + 1
    yield run("INSERT INTO scoring_rules (site_id, version, document, actor, created_at)"
              " VALUES (?, ?, ?, ?, ?)", site_id, version, document, actor, at)  # fmt: skip
    return version


def latest_rules(
    site_id: int | None, newer_than: int = -1
) -> Script[list[tuple[int, int, str, str, int]]]:
    """(site, version, document, actor, created_at) of each site's latest rules; with
    ``newer_than`` (>= 0), every version above it, of every site, instead."""
    if newer_than >= 0:
        found = yield rows("SELECT site_id, version, document, actor, created_at FROM"
                           " scoring_rules WHERE version > ?", newer_than)  # fmt: skip
        return [(int(s), int(v), d, a, int(c)) for s, v, d, a, c in found]
    where = "" if site_id is None else " AND r.site_id = ?"
    found = yield rows(
        "SELECT r.site_id, r.version, r.document, r.actor, r.created_at FROM scoring_rules r"
        " WHERE r.version = (SELECT MAX(version) FROM scoring_rules m"
        f" WHERE m.site_id = r.site_id){where}", *(() if site_id is None else (site_id,)),
    )  # fmt: skip
    return [(int(s), int(v), d, a, int(c)) for s, v, d, a, c in found]


# -- reading ---------------------------------------------------------------------------
def lead_score(lead_id: str, site_id: int | None) -> Script[LeadScore | None]:
    """None when no lead has that id. Without a site: the site it scores highest on."""
    exists = yield value("SELECT id FROM leads WHERE id = ?", lead_id)
    if exists is None:
        return None
    root = yield from resolve(lead_id)
    where, args = ("", ()) if site_id is None else (" AND site_id = ?", (site_id,))
    found = yield row(f"SELECT {STATE_COLUMNS} FROM lead_scores WHERE lead_id = ?{where}"
                      " ORDER BY score DESC, site_id LIMIT 1", root, *args)  # fmt: skip
    state = None if found is None else state_from_row(found)
    site = state.site_id if state is not None else site_id
    if site is None:
        return LeadScore(root, 0, None, [])
    entries = yield from counted_entries(root, site)
    return LeadScore(root, site, state, entries)


def scored_leads(site_id: int | None, at_least: float, limit: int) -> Script[list[ScoreState]]:
    """Unmerged leads whose last computed score is at least ``at_least``, highest first
    (decay only lowers a score: the caller applies it and filters again)."""
    where, args = ("", ()) if site_id is None else (" AND s.site_id = ?", (site_id,))
    found = yield rows(
        f"SELECT {', '.join('s.' + c.strip() for c in STATE_COLUMNS.split(','))}"
        " FROM lead_scores s JOIN leads l ON l.id = s.lead_id WHERE l.merged_into IS NULL"
        f" AND s.score >= ?{where} ORDER BY s.score DESC, s.lead_id LIMIT ?",
        at_least, *args, limit,
    )  # fmt: skip
    return [state_from_row(r) for r in found]


def add_manual(lead_id: str, entry: ScoreEntry, rules: ScoringRules, now: int) -> Script[bool]:
    yield from lock_state(lead_id, rules.site_id, rules.version, now)
    yield from append([entry], lead_id, rules.site_id, now)
    return (yield from settle(lead_id, rules, now, [entry]))


# -- rescoring -----------------------------------------------------------------------
def leads_on_site(site_id: int, after: str, limit: int) -> Script[list[str]]:
    found = yield rows("SELECT DISTINCT lead_id FROM links WHERE site_id = ? AND lead_id > ?"
                       " ORDER BY lead_id LIMIT ?", site_id, after, limit)  # fmt: skip
    return [r[0] for r in found]


def count_leads_on_site(site_id: int, version: int) -> Script[tuple[int, int]]:
    """(leads with links on the site, of which already scored under ``version``)."""
    total = yield value("SELECT COUNT(DISTINCT lead_id) FROM links WHERE site_id = ?", site_id)
    done = yield value("SELECT COUNT(*) FROM lead_scores WHERE site_id = ? AND version = ?",
                       site_id, version)  # fmt: skip
    return int(total or 0), int(done or 0)


def ledgers_of(lead_ids: Sequence[str]) -> Script[list[ScoreEntry]]:
    """Every ledger entry of these leads on every site, in the order written: what a
    person's access request shows of the profiling done on them."""
    if not lead_ids:
        return []
    found = yield rows(f"SELECT {ENTRY_SELECT} FROM score_ledger l WHERE l.lead_id IN ?"
                       " ORDER BY l.seq", list(lead_ids))  # fmt: skip
    return [entry_from_row(r) for r in found]


def history(lead_id: str, site_id: int) -> Script[list[Any]]:
    """Every event the lead's own links give it on the site, oldest first."""
    found = yield rows(f"SELECT {LINK_COLUMNS} FROM links WHERE lead_id = ?", lead_id)
    events: list[Any] = []
    for link in (link_from_row(r) for r in found):
        got = yield rows(
            f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid = ? AND site_id = ? AND at >= ?"
            " AND at < ? ORDER BY at, id", link.vid, site_id, link.valid_from,
            link.ended_at or NO_END,
        )  # fmt: skip
        events += [event_from_row(r) for r in got]
    return events


def rescore(
    lead_ids: Sequence[str], rules: ScoringRules, profiles: dict[str, Any], now: int, dry: bool
) -> Script[list[Rescored]]:
    """Replay each lead's history under ``rules`` (those not already under them). A dry
    run writes nothing and says what would change."""
    out: list[Rescored] = []
    for lead_id in lead_ids:
        if not dry:  # locked first, so two rescores never replay one lead twice
            yield run(f"INSERT INTO lead_scores ({STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                      " ON CONFLICT (lead_id, site_id) DO NOTHING",
                      lead_id, rules.site_id, 0, True, 0.0, 0, now)  # fmt: skip
        found = yield row(f"SELECT {STATE_COLUMNS} FROM lead_scores WHERE lead_id = ?"
                          f" AND site_id = ?{'' if dry else ' FOR UPDATE'}",
                          lead_id, rules.site_id)  # fmt: skip
        state = None if found is None else state_from_row(found)
        if state is not None and state.version == rules.version and not dry:
            continue
        old = [] if state is None else (yield from own_entries(lead_id, rules.site_id, state))
        manual = [e for e in old if e.kind == "manual"]
        events = yield from history(lead_id, rules.site_id)
        new = rules.evaluate([], events, profiles.get(lead_id), now)
        out.append(Rescored(lead_id, rules.standing(old, now),
                            rules.standing([*new, *manual], now)))  # fmt: skip
        if not dry:
            yield from _switch(lead_id, rules, new, now)
    return out


def own_entries(lead_id: str, site_id: int, state: ScoreState) -> Script[list[ScoreEntry]]:
    found = yield rows(f"SELECT {ENTRY_SELECT} FROM score_ledger l WHERE l.lead_id = ?"
                       " AND l.site_id = ? AND (l.version = ? OR l.kind = 'manual')"
                       " ORDER BY l.seq", lead_id, site_id, state.version)  # fmt: skip
    return [entry_from_row(r) for r in found]


def _switch(lead_id: str, rules: ScoringRules, new: list[ScoreEntry], now: int) -> Script[None]:
    """The lead's entries are under ``rules`` from now on: its new ones are appended (the
    old ones stay, as history) and its root's standing is worked out again."""
    root = yield from resolve(lead_id)
    yield from lock_state(root, rules.site_id, rules.version, now)
    before = rules.standing((yield from counted_entries(root, rules.site_id)), now).score
    yield run("UPDATE lead_scores SET version = ? WHERE lead_id = ? AND site_id = ?",
              rules.version, lead_id, rules.site_id)  # fmt: skip
    yield from append(new, lead_id, rules.site_id, now)
    yield from settle(lead_id, rules, now, new, before)


# -- the change feed -----------------------------------------------------------------
def feed_position() -> Script[int]:
    return int((yield value("SELECT seq FROM scoring_feed WHERE id = 1")) or 0)


def set_feed_position(seq: int) -> Script[None]:
    yield run("UPDATE scoring_feed SET seq = GREATEST(seq, ?) WHERE id = 1", seq)


class LedgerTables(Tables):
    """Rules, ledger reads, manual entries, rescoring: mixed into both stores."""

    async def put_scoring_rules(self, site_id: int, document: str, *, actor: str, at: int) -> int:
        """Keep a new version of the site's rules; return its number."""
        return await self.transact(partial(put_rules, site_id, document, actor, at))

    async def latest_scoring_rules(
        self, site_id: int | None = None, *, newer_than: int = -1
    ) -> list[tuple[int, int, str, str, int]]:
        """(site, version, document JSON, actor, created_at) of each site's latest rules
        (with ``newer_than``: every version above it)."""
        return await self.read(latest_rules(site_id, newer_than))

    async def lead_score(self, lead_id: str, site_id: int | None = None) -> LeadScore | None:
        return await self.read(lead_score(lead_id, site_id))

    async def scored_leads(
        self, *, site_id: int | None, at_least: float, limit: int
    ) -> list[ScoreState]:
        return await self.read(scored_leads(site_id, at_least, limit))

    async def add_score_entry(
        self, lead_id: str, entry: ScoreEntry, rules: ScoringRules, now: int
    ) -> bool:
        return await self.transact(partial(add_manual, lead_id, entry, rules, now))

    async def leads_on_site(self, site_id: int, *, after: str, limit: int) -> list[str]:
        return await self.read(leads_on_site(site_id, after, limit))

    async def count_leads_on_site(self, site_id: int, version: int) -> tuple[int, int]:
        return await self.read(count_leads_on_site(site_id, version))

    async def rescore(
        self,
        lead_ids: Sequence[str],
        rules: ScoringRules,
        profiles: dict[str, Any],
        *,
        now: int,
        dry_run: bool = False,
    ) -> list[Rescored]:
        script = partial(rescore, lead_ids, rules, profiles, now, dry_run)
        return await (self.read(script()) if dry_run else self.transact(script))

    async def score_ledgers(self, lead_ids: Sequence[str]) -> list[ScoreEntry]:
        return await self.read(ledgers_of(lead_ids))

    async def scoring_feed_position(self) -> int:
        return await self.read(feed_position())

    async def set_scoring_feed_position(self, seq: int) -> None:
        await self.transact(partial(set_feed_position, seq))
