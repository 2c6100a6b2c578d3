"""Leads and the links that give them visitors, written once for both databases.

Across collector processes (PostgreSQL): one email makes one lead (``ON CONFLICT`` on
the email index), a visitor is linked by one transaction at a time (its advisory lock,
taken first), and links hold the LEAD_GRAPH lock shared, so the chain of
``merged_into`` a link follows cannot change under it (merges hold it exclusively,
``tables.merges``). The stitching decision and the touch rules come from ``identity``
(``StitchRules``): they are taken here, once, inside the transaction that applies them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.errors import Conflict
from tracker.storage.records import (
    Change,
    ConsentReceipt,
    Event,
    LeadRow,
    Link,
    LinkOutcome,
    LinkRequest,
    Stitch,
    StitchRules,
)
from tracker.storage.rows import (
    EVENT_COLUMNS,
    LEAD_COLUMNS,
    LINK_COLUMNS,
    RECEIPT_COLUMNS,
    SHOWN_EVENT_COLUMNS,
    campaign_of,
    change_from_row,
    event_from_row,
    from_json,
    lead_from_row,
    link_from_row,
    receipt_from_row,
    to_json,
)
from tracker.storage.script import Lock, LockName, Script, lock_visitors, row, rows, run, value
from tracker.storage.tables import Tables
from tracker.storage.tables.changes import MAX_MERGE_DEPTH, record_change, resolve

NO_END = 2**62
"""The end of an open link's time range (later than any event)."""
TOUCH_EVENTS = 5000
"""How many of a visitor's events (oldest first) its touches are looked for in."""
MAX_FAMILY = 10_000
LEADS_PER_QUERY = 400
"""Leads named in one statement (each named twice: under SQLite's 999 parameters)."""


# -- leads ---------------------------------------------------------------------------
def create_lead(lead: LeadRow) -> Script[tuple[LeadRow, bool]]:
    """Two collectors identifying one email at once (PostgreSQL): the second INSERT
    waits for the first to commit, then does nothing and reads the first one's lead."""
    created = yield value(
        f"INSERT INTO leads ({LEAD_COLUMNS}, first_campaign, last_campaign)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (email_index) DO NOTHING RETURNING id",
        lead.id, lead.email_index, lead.key_id, lead.email, lead.name, lead.company,
        lead.phone, lead.fields, to_json(lead.first_touch), to_json(lead.last_touch), None,
        lead.created_at, lead.updated_at, campaign_of(lead.first_touch),
        campaign_of(lead.last_touch),
    )  # fmt: skip
    if created is None:
        found = yield row(f"SELECT {LEAD_COLUMNS} FROM leads WHERE email_index = ?",
                          lead.email_index)  # fmt: skip
        return lead_from_row(found), False
    yield from record_change(lead.id, "created", lead.created_at, {"lead": lead.id})
    return lead, True


def lead_where(condition: str, arg: object) -> Script[LeadRow | None]:
    found = yield row(f"SELECT {LEAD_COLUMNS} FROM leads WHERE {condition}", arg)
    return None if found is None else lead_from_row(found)


def resolve_lead(lead_id: str) -> Script[str | None]:
    """Follow ``merged_into`` to the lead standing for this person now; None if unknown."""
    current = lead_id
    for _ in range(MAX_MERGE_DEPTH):
        found = yield row("SELECT merged_into FROM leads WHERE id = ?", current)
        if found is None:
            return None
        if found[0] is None:
            return current
        current = found[0]
    raise Conflict("merge chain too deep")


def leads_page(
    updated_since: int, after: tuple[int, str] | None, limit: int
) -> Script[list[LeadRow]]:
    """Unmerged leads by (updated_at, id), for cursor paging."""
    after_at, after_id = after or (updated_since - 1, "")
    found = yield rows(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE merged_into IS NULL AND updated_at >= ?"
        " AND (updated_at, id) > (?, ?) ORDER BY updated_at, id LIMIT ?",
        updated_since, after_at, after_id, limit,
    )  # fmt: skip
    return [lead_from_row(r) for r in found]


def lead_family(root: str) -> Script[list[str]]:
    """The lead and every lead merged into it, transitively (an unmerge restores them)."""
    family, frontier = [root], [root]
    while frontier and len(family) < MAX_FAMILY:
        found = yield rows("SELECT id FROM leads WHERE merged_into IN ?", frontier)
        frontier = [r[0] for r in found]
        family.extend(frontier)
    return family


def bump(lead_id: str, at: int) -> Script[None]:
    """The lead's view changed (visitors, merged leads): ``updated_since`` must see it."""
    yield run("UPDATE leads SET updated_at = GREATEST(updated_at, ?) WHERE id = ?", at, lead_id)


# -- links ---------------------------------------------------------------------------
def link_visitor(req: LinkRequest, rules: StitchRules) -> Script[LinkOutcome]:
    yield from lock_visitors([req.vid])
    yield Lock(LockName.LEAD_GRAPH, shared=True)
    current = yield from _open_link(req.vid)
    current_root = (yield from resolve(current.lead_id)) if current else None
    new_root = yield from resolve(req.lead_id)
    action = rules.decide(current, current_root, new_root)
    changed_at = req.at if req.changed_at is None else req.changed_at
    if action is Stitch.KEPT:
        assert current is not None
        yield from _fold_touches(req.vid, new_root, current.valid_from, rules, changed_at)
        return LinkOutcome(action, current)
    ended = None
    if current is not None:
        yield run("UPDATE links SET ended_at = ? WHERE id = ?", req.at, current.id)
        ended = dataclasses.replace(current, ended_at=req.at)
    link = yield from _add_link(req, valid_from=0 if action is Stitch.FIRST else req.at)
    yield from _fold_touches(req.vid, new_root, link.valid_from, rules, changed_at)
    yield from bump(new_root, changed_at)
    yield from record_change(new_root, "identified", changed_at, {
        "lead": new_root, "visitor": req.vid, "site_id": req.site_id,
        "evidence": req.evidence, "link": link.id,
    })  # fmt: skip
    return LinkOutcome(action, link, ended)


def _open_link(vid: str) -> Script[Link | None]:
    found = yield row(
        f"SELECT {LINK_COLUMNS} FROM links WHERE vid = ? AND ended_at IS NULL"
        " ORDER BY valid_from DESC, id DESC LIMIT 1",
        vid,
    )
    return None if found is None else link_from_row(found)


def _add_link(req: LinkRequest, *, valid_from: int) -> Script[Link]:
    link_id = yield value(
        "INSERT INTO links (vid, lead_id, site_id, evidence, began_at, valid_from, ip)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        req.vid, req.lead_id, req.site_id, req.evidence, req.at, valid_from, req.ip,
    )  # fmt: skip
    return Link(link_id, req.vid, req.lead_id, req.site_id, req.evidence, req.at, valid_from,
                None, req.ip)  # fmt: skip


def _fold_touches(vid: str, lead_id: str, since: int, rules: StitchRules, at: int) -> Script[None]:
    """Fold the touches of the visitor's events from ``since`` (those its link gives the
    lead) into the lead's. ``at`` is the change time: ``updated_at`` never goes back.

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: the link just inserted holds a KEY SHARE
    lock on the lead (its foreign key), and so may another collector's link to the same
    lead; FOR UPDATE would wait on that one while it waits on ours (a deadlock)."""
    found = yield rows(f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid = ?"
                       " ORDER BY at, id LIMIT ?", vid, TOUCH_EVENTS)  # fmt: skip
    touches = rules.touches([event_from_row(r) for r in found], since)
    if touches is None:
        return
    stored = yield row(
        "SELECT first_touch, last_touch FROM leads WHERE id = ? FOR NO KEY UPDATE", lead_id
    )
    first, last = (from_json(stored[0]), from_json(stored[1])) if stored else (None, None)
    first, last = rules.fold(first, last, touches)
    yield run(
        "UPDATE leads SET first_touch = ?, last_touch = ?, first_campaign = ?,"
        " last_campaign = ?, updated_at = GREATEST(updated_at, ?) WHERE id = ?",
        to_json(first), to_json(last), campaign_of(first), campaign_of(last), at, lead_id,
    )  # fmt: skip


def links_where(condition: str, arg: object, order: str) -> Script[list[Link]]:
    found = yield rows(f"SELECT {LINK_COLUMNS} FROM links WHERE {condition} ORDER BY {order}",
                       arg)  # fmt: skip
    return [link_from_row(r) for r in found]


def link_events(
    links: Sequence[Link], limit: int, sites: Sequence[int] | None = None
) -> Script[list[Event]]:
    """The events each link covers (its visitor, within its time range), by time; with
    ``sites``, only those on these sites."""
    found = yield from link_event_rows(links, limit, sites, f"id, {EVENT_COLUMNS}", at=5)
    return [event_from_row(r) for r in found]


def link_event_rows(
    links: Sequence[Link], limit: int, sites: Sequence[int] | None, columns: str, *, at: int
) -> Script[list[Any]]:
    """``link_events`` as rows of ``columns`` (``id`` first, ``at`` at index ``at``)."""
    found: list[Any] = []
    on_sites, site_args = ("", ()) if sites is None else (" AND site_id IN ?", (list(sites),))
    for link in links:
        found += yield rows(
            f"SELECT {columns} FROM events WHERE vid = ? AND at >= ? AND at < ?"
            f"{on_sites} ORDER BY at, id LIMIT ?",
            link.vid, link.valid_from, link.ended_at or NO_END, *site_args, limit,
        )  # fmt: skip
    if len(links) > 1:  # one link's events come in order from the query
        found.sort(key=lambda r: (r[at], r[0]))
    return found[:limit]


def lead_sites(lead_ids: Sequence[str]) -> Script[dict[str, frozenset[int]]]:
    """The sites each lead is on: those of its links and of the events they cover, for
    the lead and every lead merged into it (``tracker.scope``: what a site-limited key
    or user may see). A few statements for all the leads, whatever their number."""
    wanted = list(dict.fromkeys(lead_ids))
    owner = {lead_id: lead_id for lead_id in wanted}  # family member -> the lead asked
    frontier = wanted
    while frontier and len(owner) < MAX_FAMILY * max(1, len(wanted)):
        found = yield rows("SELECT id, merged_into FROM leads WHERE merged_into IN ?", frontier)
        frontier = [r[0] for r in found if r[0] not in owner]
        owner.update((r[0], owner[r[1]]) for r in found if r[0] in frontier)
    sites: dict[str, set[int]] = {lead_id: set() for lead_id in wanted}
    members = list(owner)
    for start in range(0, len(members), LEADS_PER_QUERY):
        chunk = members[start : start + LEADS_PER_QUERY]
        on = yield rows(
            "SELECT k.lead_id, k.site_id FROM links k WHERE k.lead_id IN ?"
            " UNION SELECT k.lead_id, e.site_id FROM links k JOIN events e ON e.vid = k.vid"
            " AND e.at >= k.valid_from AND e.at < COALESCE(k.ended_at, ?) WHERE k.lead_id IN ?",
            chunk, NO_END, chunk,
        )  # fmt: skip
        for member, site_id in on:
            sites[owner[member]].add(int(site_id))
    return {lead_id: frozenset(found) for lead_id, found in sites.items()}


def consent_receipts_of(vids: Sequence[str]) -> Script[list[ConsentReceipt]]:
    found = yield rows(f"SELECT {RECEIPT_COLUMNS} FROM consent_receipts WHERE vid IN ?"
                       " ORDER BY at, id", list(vids))  # fmt: skip
    return [receipt_from_row(r) for r in found]


def changes_page(after: int, limit: int) -> Script[list[Change]]:
    found = yield rows("SELECT seq, lead_id, kind, at FROM changes WHERE seq > ?"
                       " ORDER BY seq LIMIT ?", after, limit)  # fmt: skip
    return [change_from_row(r) for r in found]


class IdentityTables(Tables):
    """Leads, links and the change feed: mixed into both stores."""

    async def create_lead(self, lead: LeadRow) -> tuple[LeadRow, bool]:
        """Insert ``lead`` unless its email index exists; return (the lead, created?)."""
        return await self.transact(partial(create_lead, lead))

    async def lead(self, lead_id: str) -> LeadRow | None:
        return await self.read(lead_where("id = ?", lead_id))

    async def lead_by_index(self, email_index: bytes) -> LeadRow | None:
        return await self.read(lead_where("email_index = ?", email_index))

    async def resolve_lead(self, lead_id: str) -> str | None:
        """The lead standing for this person now (after merges); None if unknown."""
        return await self.read(resolve_lead(lead_id))

    async def leads_page(
        self, *, updated_since: int, after: tuple[int, str] | None, limit: int
    ) -> list[LeadRow]:
        return await self.read(leads_page(updated_since, after, limit))

    async def lead_family(self, root: str) -> list[str]:
        return await self.read(lead_family(root))

    async def link_visitor(self, req: LinkRequest, rules: StitchRules) -> LinkOutcome:
        return await self.transact(partial(link_visitor, req, rules))

    async def links_of_leads(self, lead_ids: Sequence[str]) -> list[Link]:
        return await self.read(links_where("lead_id IN ?", list(lead_ids), "began_at, id"))

    async def links_of_visitor(self, vid: str) -> list[Link]:
        return await self.read(links_where("vid = ?", vid, "valid_from, id"))

    async def link_events(
        self, links: Sequence[Link], *, limit: int, sites: Sequence[int] | None = None
    ) -> list[Event]:
        return await self.read(link_events(links, limit, sites))

    async def shown_events(
        self, links: Sequence[Link], *, limit: int, sites: Sequence[int] | None = None
    ) -> list[Any]:
        return await self.read(link_event_rows(links, limit, sites, SHOWN_EVENT_COLUMNS, at=1))

    async def lead_sites(self, lead_ids: Sequence[str]) -> dict[str, frozenset[int]]:
        return await self.read(lead_sites(lead_ids))

    async def consent_receipts_of(self, vids: Sequence[str]) -> list[ConsentReceipt]:
        return await self.read(consent_receipts_of(vids))

    async def changes_page(self, *, after: int, limit: int) -> list[Change]:
        return await self.read(changes_page(after, limit))
