"""Scoring rules and the points ledger, written once for both databases.

Which entries events earn, what a score is, and when ``lead.hot`` is sent are decided
in ``scoring`` (``ScoringRules``), inside the transaction that appends the entries. A
lead's entries are appended under the lock of its ``lead_scores`` row, so two collectors
scoring one lead apply one after the other. Entries are kept per lead that earned them
(the lead the visitor was linked to then): a merge adds the merged lead's entries to the
surviving lead's score and an unmerge takes exactly those back, without rewriting a
line. Profile entries (traits, touches) count only while their lead is not merged.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from tracker.storage.records import Event, Link, ScoreEntry, ScoreState, ScoringRules
from tracker.storage.rows import (
    EVENT_COLUMNS,
    LINK_COLUMNS,
    event_from_row,
    link_from_row,
    to_json,
)
from tracker.storage.script import Insert, Script, row, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.changes import active_webhooks, resolve
from tracker.storage.tables.identity import NO_END, lead_family

ENTRY_COLUMNS = ("lead_id", "site_id", "version", "rule", "axis", "kind", "source", "object",
                 "points", "at", "reason", "actor", "recorded_at")  # fmt: skip
ENTRY_SELECT = "l.seq, " + ", ".join(f"l.{c}" for c in ENTRY_COLUMNS)
STATE_COLUMNS = "lead_id, site_id, version, armed, score, fit, at"
LAST_PAGES = 10
VISITORS_PER_QUERY = 900


def entry_from_row(r: Sequence[Any]) -> ScoreEntry:
    seq, lead, site, version, rule, axis, kind, source, obj, points, at, reason, actor, rec = r
    return ScoreEntry(rule, axis, kind, source, int(points), int(at), reason, obj, int(version),
                      actor, lead, int(site), int(rec), int(seq))  # fmt: skip


def entry_row(e: ScoreEntry, lead_id: str, site_id: int, now: int) -> tuple[Any, ...]:
    return (lead_id, site_id, e.version, e.rule, e.axis, e.kind, e.source, e.object, e.points,
            e.at, e.reason, e.actor, now)  # fmt: skip


def state_from_row(r: Sequence[Any]) -> ScoreState:
    lead, site, version, armed, score, fit, at = r
    return ScoreState(lead, int(site), int(version), bool(armed), float(score), int(fit), int(at))


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


# -- the ledger ----------------------------------------------------------------------
def lock_state(lead_id: str, site_id: int, version: int, now: int) -> Script[ScoreState]:
    """The lead's state row (made if new: armed, at this version), locked (PostgreSQL)."""
    yield run(f"INSERT INTO lead_scores ({STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
              " ON CONFLICT (lead_id, site_id) DO NOTHING",
              lead_id, site_id, version, True, 0.0, 0, now)  # fmt: skip
    found = yield row(f"SELECT {STATE_COLUMNS} FROM lead_scores WHERE lead_id = ?"
                      " AND site_id = ? FOR UPDATE", lead_id, site_id)  # fmt: skip
    return state_from_row(found)


def entries_of(lead_id: str, site_id: int, version: int) -> Script[list[ScoreEntry]]:
    found = yield rows(f"SELECT {ENTRY_SELECT} FROM score_ledger l WHERE l.lead_id = ?"
                       " AND l.site_id = ? AND l.version = ? ORDER BY l.seq",
                       lead_id, site_id, version)  # fmt: skip
    return [entry_from_row(r) for r in found]


def counted_entries(root: str, site_id: int) -> Script[list[ScoreEntry]]:
    """The entries a lead's score is the sum of: its own and those of the leads merged
    into it, each under the rules version its lead is scored under (manual entries
    always), profile entries of the lead itself only."""
    family = yield from lead_family(root)
    found = yield rows(
        f"SELECT {ENTRY_SELECT} FROM score_ledger l JOIN lead_scores s ON s.lead_id = l.lead_id"
        " AND s.site_id = l.site_id WHERE l.lead_id IN ? AND l.site_id = ?"
        " AND (l.version = s.version OR l.kind = 'manual')"
        " AND (l.kind <> 'profile' OR l.lead_id = ?) ORDER BY l.at, l.seq",
        family, site_id, root,
    )  # fmt: skip
    return [entry_from_row(r) for r in found]


def append(entries: Sequence[ScoreEntry], lead_id: str, site_id: int, now: int) -> Script[None]:
    if entries:
        yield Insert("score_ledger", ENTRY_COLUMNS,
                     [entry_row(e, lead_id, site_id, now) for e in entries])  # fmt: skip


Versions = Mapping[tuple[int, int], ScoringRules]
"""Every version of every site's rules, by (site, version)."""


def score_lead(
    lead_id: str,
    rules: ScoringRules,
    events: Sequence[Event],
    profile: Any,
    now: int,
    *,
    versions: Versions | None = None,
) -> Script[bool]:
    """Append what ``events`` (and ``profile``) earn the lead; then its root's standing.
    A lead whose entries are under older rules is scored under those (``versions``)
    until a rescore replays it. True: lead.hot was sent."""
    state = yield from lock_state(lead_id, rules.site_id, rules.version, now)
    if state.version != rules.version:
        older = (versions or {}).get((rules.site_id, state.version))
        if older is None:
            return False
        rules = older
    prior = yield from entries_of(lead_id, rules.site_id, rules.version)
    new = rules.evaluate(prior, events, profile, now)
    if not new:
        return False  # nothing changed (decay is applied when read)
    yield from append(new, lead_id, rules.site_id, now)
    return (yield from settle(lead_id, rules, now, new))


def settle(
    lead_id: str,
    rules: ScoringRules,
    now: int,
    new: Sequence[ScoreEntry] = (),
    before: float | None = None,
) -> Script[bool]:
    """Bring the root lead's state up to date after ``new`` entries of ``lead_id`` (or a
    merge): its score for lists, and ``lead.hot`` once per upward crossing. ``before``:
    the score before, when not the ledger less ``new`` (a rescore)."""
    root = yield from resolve(lead_id)
    state = yield from lock_state(root, rules.site_id, rules.version, now)
    entries = yield from counted_entries(root, rules.site_id)
    if before is None:
        fresh = {(lead_id, e.version, e.rule, e.source) for e in new}
        kept = [e for e in entries if (e.lead_id, e.version, e.rule, e.source) not in fresh]
        before = rules.standing(kept, now).score
    after = rules.standing(entries, now)
    fire, armed = rules.hot(before, after.score, state.armed)
    yield run("UPDATE lead_scores SET armed = ?, score = ?, fit = ?, at = ? WHERE lead_id = ?"
              " AND site_id = ?", armed, after.score, after.fit, now, root,
              rules.site_id)  # fmt: skip
    if fire:
        yield run("INSERT INTO hot_crossings (lead_id, site_id, at) VALUES (?, ?, ?)",
                  root, rules.site_id, now)  # fmt: skip
        data = {"lead": root, "site_id": rules.site_id, **rules.hot_data(entries, now)}
        data |= yield from activity(root, rules.site_id)
        yield from enqueue(root, "lead.hot", data, now)
    return fire


def activity(root: str, site_id: int) -> Script[dict[str, Any]]:
    """The last pages the lead's visitors viewed on the site, and their consent now."""
    family = yield from lead_family(root)
    found = yield rows(f"SELECT {LINK_COLUMNS} FROM links WHERE lead_id IN ?", family)
    links = [link_from_row(r) for r in found]
    pages: list[tuple[int, str | None, str | None]] = []
    for link in links:
        pages += yield rows(
            "SELECT at, url, title FROM events WHERE vid = ? AND site_id = ? AND type = ?"
            " AND at >= ? AND at < ? ORDER BY at DESC LIMIT ?", link.vid, site_id, "pageview",
            link.valid_from, link.ended_at or NO_END, LAST_PAGES,
        )  # fmt: skip
    pages.sort(key=lambda p: -p[0])
    states = yield rows(
        "SELECT analytics, marketing, at FROM consent_state WHERE site_id = ? AND vid IN ?"
        " ORDER BY at DESC", site_id, [k.vid for k in links] or [""],
    )  # fmt: skip
    consent = None
    if states:
        analytics, marketing, at = states[0]
        consent = {"analytics": bool(analytics), "marketing": bool(marketing), "at": int(at)}
    return {"last_pages": [{"at": int(a), "url": u, "title": t} for a, u, t in pages[:LAST_PAGES]],
            "consent": consent}  # fmt: skip


def enqueue(lead_id: str, event_type: str, data: dict[str, Any], now: int) -> Script[None]:
    """One outbox row per webhook subscribed to ``event_type`` (no change-feed row: a
    score is not a change of the lead's record)."""
    for hook in (yield from active_webhooks()):
        if hook.subscribes_to(event_type):
            yield run("INSERT INTO outbox (id, webhook_id, type, lead_id, data, created_at,"
                      " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)", secrets.token_hex(16),
                      hook.id, event_type, lead_id, to_json(data), now, now)  # fmt: skip


# -- what ingest committed -----------------------------------------------------------
def visitor_links(vids: Sequence[str]) -> Script[list[Link]]:
    links: list[Link] = []
    ordered = sorted(set(vids))
    for start in range(0, len(ordered), VISITORS_PER_QUERY):
        chunk = ordered[start : start + VISITORS_PER_QUERY]
        found = yield rows(f"SELECT {LINK_COLUMNS} FROM links WHERE vid IN ?", chunk)
        links += [link_from_row(r) for r in found]
    return links


def score_visitors(
    rules: Mapping[int, ScoringRules],
    vids: Sequence[str],
    since: int,
    now: int,
    versions: Versions | None = None,
) -> Script[int]:
    """Score the events from ``since`` on of those of ``vids`` that are linked to a lead
    (the others wait for their identification). Returns how many leads were scored."""
    links = yield from visitor_links(vids)
    by_lead: dict[tuple[str, int], list[Event]] = {}
    for link in links:
        for event in (yield from link_range(link, max(since, link.valid_from))):
            by_lead.setdefault((link.lead_id, event.site_id), []).append(event)
    for (lead_id, site_id), events in sorted(by_lead.items()):
        if site_id in rules:
            yield from score_lead(lead_id, rules[site_id], events, None, now, versions=versions)
    return len(by_lead)


def link_range(link: Link, since: int) -> Script[list[Event]]:
    found = yield rows(f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid = ? AND at >= ?"
                       " AND at < ? ORDER BY at, id", link.vid, since,
                       link.ended_at or NO_END)  # fmt: skip
    return [event_from_row(r) for r in found]


class ScoringTables(Tables):
    """Rules and the ledger's writes: mixed into both stores."""

    async def put_scoring_rules(self, site_id: int, document: str, *, actor: str, at: int) -> int:
        """Keep a new version of the site's rules; return its number."""
        return await self.transact(partial(put_rules, site_id, document, actor, at))

    async def latest_scoring_rules(
        self, site_id: int | None = None, *, newer_than: int = -1
    ) -> list[tuple[int, int, str, str, int]]:
        """(site, version, document JSON, actor, created_at) of each site's latest rules
        (with ``newer_than``: every version above it)."""
        return await self.read(latest_rules(site_id, newer_than))

    async def score_visitors(
        self,
        rules: Mapping[int, ScoringRules],
        vids: Sequence[str],
        *,
        since: int,
        now: int,
        versions: Versions | None = None,
    ) -> int:
        """Most visitors are anonymous: a read finds that out without taking the writer
        (SQLite's single one is ingest's)."""
        linked = {link.vid for link in await self.read(visitor_links(vids))}
        if not linked:
            return 0
        chosen = [vid for vid in vids if vid in linked]
        return await self.transact(partial(score_visitors, rules, chosen, since, now, versions))

    async def score_lead(
        self,
        lead_id: str,
        rules: ScoringRules,
        events: Sequence[Event],
        profile: Any,
        *,
        now: int,
        versions: Versions | None = None,
    ) -> bool:
        script = partial(score_lead, lead_id, rules, events, profile, now, versions=versions)
        return await self.transact(script)

    async def settle_score(self, lead_id: str, rules: ScoringRules, now: int) -> bool:
        return await self.transact(partial(settle, lead_id, rules, now))
