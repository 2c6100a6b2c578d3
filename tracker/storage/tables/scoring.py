"""The points ledger's writes (what ingest, identifications and merges earn a lead),
written once for both databases.

Which entries events earn, what a score is, and when ``lead.hot`` is sent are decided
in ``scoring`` (``ScoringRules``), inside the transaction that appends the entries. A
lead's entries are appended under the lock of its ``lead_scores`` row, so two collectors
scoring one lead apply one after the other. Entries are kept per lead that earned them
(the lead the visitor was linked to then): a merge adds the merged lead's entries to the
surviving lead's score and an unmerge takes exactly those back, without rewriting a
line. Profile entries (traits, touches) count only while their lead is not merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from tracker.storage.records import Event, Link, ScoreEntry, ScoreState, ScoringRules
from tracker.storage.rows import (
    EVENT_COLUMNS,
    LINK_COLUMNS,
    event_from_row,
    link_from_row,
)
from tracker.storage.script import Insert, Lock, LockName, Script, row, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.changes import resolve
from tracker.storage.tables.handover import activity, enqueue
from tracker.storage.tables.identity import NO_END, lead_family

ENTRY_COLUMNS = ("lead_id", "site_id", "version", "rule", "axis", "kind", "source", "object",
                 "points", "at", "reason", "actor", "recorded_at")  # fmt: skip
ENTRY_SELECT = "l.seq, " + ", ".join(f"l.{c}" for c in ENTRY_COLUMNS)
STATE_COLUMNS = "lead_id, site_id, version, armed, score, fit, at"
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


# -- the ledger ----------------------------------------------------------------------
def lock_state(lead_id: str, site_id: int, version: int, now: int) -> Script[ScoreState]:
    """The lead's state row (made if new: armed, at this version), locked (PostgreSQL)."""
    yield run(f"INSERT INTO lead_scores ({STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
              " ON CONFLICT (lead_id, site_id) DO NOTHING",
              lead_id, site_id, version, True, 0.0, 0, now)  # fmt: skip
    found = yield row(f"SELECT {STATE_COLUMNS} FROM lead_scores WHERE lead_id = ?"
                      " AND site_id = ? FOR UPDATE", lead_id, site_id)  # fmt: skip
    return state_from_row(found)


def chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + VISITORS_PER_QUERY]) for i in range(0, len(ids), VISITORS_PER_QUERY)]


def states_of(ids: Sequence[str], site_id: int, *, lock: bool) -> Script[dict[str, ScoreState]]:
    states: dict[str, ScoreState] = {}
    for chunk in chunks(sorted(ids)):
        found = yield rows(f"SELECT {STATE_COLUMNS} FROM lead_scores WHERE site_id = ? AND"
                           f" lead_id IN ? ORDER BY lead_id{' FOR UPDATE' if lock else ''}",
                           site_id, chunk)  # fmt: skip
        states.update((r[0], state_from_row(r)) for r in found)
    return states


def lock_states(
    ids: Sequence[str], site_id: int, version: int, now: int
) -> Script[dict[str, ScoreState]]:
    """The leads' state rows (made if new: armed, at ``version``), locked (PostgreSQL)."""
    states = yield from states_of(ids, site_id, lock=True)
    missing = [i for i in sorted(ids) if i not in states]
    for lead_id in missing:
        yield run(f"INSERT INTO lead_scores ({STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                  " ON CONFLICT (lead_id, site_id) DO NOTHING",
                  lead_id, site_id, version, True, 0.0, 0, now)  # fmt: skip
    if missing:
        states |= yield from states_of(missing, site_id, lock=True)
    return states


def entries_under(
    states: Mapping[str, ScoreState], site_id: int
) -> Script[dict[str, list[ScoreEntry]]]:
    """Each lead's entries under the rules version it is scored under, oldest first."""
    out: dict[str, list[ScoreEntry]] = {lead_id: [] for lead_id in states}
    for chunk in chunks(sorted(states)):
        found = yield rows(f"SELECT {ENTRY_SELECT} FROM score_ledger l WHERE l.site_id = ?"
                           " AND l.lead_id IN ? ORDER BY l.seq", site_id, chunk)  # fmt: skip
        for entry in map(entry_from_row, found):
            if entry.version == states[entry.lead_id].version:
                out[entry.lead_id].append(entry)
    return out


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


def score_leads(
    rules: ScoringRules,
    work: Mapping[str, Sequence[Event]],
    profiles: Mapping[str, Any],
    now: int,
    versions: Versions | None = None,
) -> Script[int]:
    """Append what each lead's events (and profile) earn it, a few statements for all;
    then the standing of the roots of those that earned something. A lead whose entries
    are under older rules is scored under those (``versions``) until a rescore replays
    it. Returns how many ``lead.hot`` were sent."""
    site = rules.site_id
    yield Lock(LockName.LEAD_GRAPH, shared=True)  # an erasure waits, or has finished
    found = yield rows("SELECT id FROM leads WHERE id IN ?", sorted(work) or [""])
    work = {r[0]: work[r[0]] for r in found}  # an erased lead earns nothing
    states = yield from lock_states(list(work), site, rules.version, now)
    priors = yield from entries_under(states, site)
    changed, new_rows = [], []
    for lead_id in sorted(work):
        version = states[lead_id].version
        applied = rules if version == rules.version else (versions or {}).get((site, version))
        if applied is None:
            continue
        new = applied.evaluate(priors[lead_id], work[lead_id], profiles.get(lead_id), now)
        if new:  # else nothing changed (decay is applied when read)
            changed.append((lead_id, applied, new))
            new_rows += [entry_row(e, lead_id, site, now) for e in new]
    if new_rows:
        yield Insert("score_ledger", ENTRY_COLUMNS, new_rows)
    fired = 0
    for lead_id, applied, new in changed:
        fired += yield from settle(lead_id, applied, now, new)
    return fired


def score_lead(
    lead_id: str,
    rules: ScoringRules,
    events: Sequence[Event],
    profile: Any,
    now: int,
    *,
    versions: Versions | None = None,
) -> Script[bool]:
    """``score_leads`` for one lead. True: lead.hot was sent."""
    fired = yield from score_leads(rules, {lead_id: events}, {lead_id: profile}, now, versions)
    return fired > 0


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
    # Held until commit (an erasure's delete waits for it); gone: erased since its change
    # was read, nothing to settle (the score row would name a lead no longer there).
    if (yield value("SELECT id FROM leads WHERE id = ? FOR KEY SHARE", root)) is None:
        return False
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
    (the others wait for their identification), each for the lead its link gave it to.
    Returns how many leads had events to score."""
    links = yield from visitor_links(vids)
    by_vid: dict[str, list[Event]] = {}
    for chunk in chunks(sorted({link.vid for link in links})):
        found = yield rows(f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid IN ? AND at >= ?"
                           " ORDER BY at, id", chunk, since)  # fmt: skip
        for event in map(event_from_row, found):
            by_vid.setdefault(event.vid, []).append(event)
    work: dict[int, dict[str, list[Event]]] = {}
    for link in links:
        start, end = link.valid_from, link.ended_at or NO_END
        for event in by_vid.get(link.vid, ()):
            if start <= event.at < end:
                work.setdefault(event.site_id, {}).setdefault(link.lead_id, []).append(event)
    for site_id, per_lead in sorted(work.items()):
        if site_id in rules:
            yield from score_leads(rules[site_id], per_lead, {}, now, versions)
    return sum(len(per_lead) for per_lead in work.values())


class ScoringTables(Tables):
    """Rules and the ledger's writes: mixed into both stores."""

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
