"""Leads, visitor links, merges, the change feed and the webhook outbox in SQLite.

Every change to a lead writes its change-feed row and its outbox rows in the same
transaction, so a sync client or a webhook receiver can never miss one or see one that
did not happen. The stitching and merge *decisions* come from ``identity`` (passed in
as rules); this module only applies them atomically.
"""

from __future__ import annotations

import dataclasses
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from tracker.errors import Conflict, NotFound
from tracker.storage.records import (
    Change,
    ConsentReceipt,
    Event,
    LeadRow,
    Link,
    LinkOutcome,
    LinkRequest,
    Merge,
    StitchRules,
)
from tracker.storage.rows import (
    EVENT_COLUMNS,
    LEAD_COLUMNS,
    LINK_COLUMNS,
    MERGE_COLUMNS,
    change_from_row,
    event_from_row,
    lead_from_row,
    link_from_row,
    merge_from_row,
    to_json,
)
from tracker.storage.sqlite.database import SQLiteDatabase

_MAX_MERGE_DEPTH = 64


def record_change(
    db: sqlite3.Connection, lead_id: str, kind: str, at: int, data: dict[str, Any]
) -> None:
    """The change-feed row and one outbox row per subscribed webhook, in the caller's
    transaction. ``data`` must hold ids only: it is rendered into a payload at send time."""
    db.execute("INSERT INTO changes (lead_id, kind, at) VALUES (?, ?, ?)", (lead_id, kind, at))
    event_type = f"lead.{kind}"
    for webhook_id, events in db.execute(
        "SELECT id, events FROM webhooks WHERE disabled_at IS NULL"
    ).fetchall():
        if f'"{event_type}"' in events:
            db.execute(
                "INSERT INTO outbox (id, webhook_id, type, lead_id, data, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (secrets.token_hex(16), webhook_id, event_type, lead_id, to_json(data), at, at),
            )


def resolve(db: sqlite3.Connection, lead_id: str) -> str:
    """Follow ``merged_into`` to the lead that stands for this person now."""
    current = lead_id
    for _ in range(_MAX_MERGE_DEPTH):
        row = db.execute("SELECT merged_into FROM leads WHERE id = ?", (current,)).fetchone()
        if row is None or row[0] is None:
            return current
        current = row[0]
    raise Conflict("merge chain too deep")


def _open_link(db: sqlite3.Connection, vid: str) -> Link | None:
    row = db.execute(
        f"SELECT {LINK_COLUMNS} FROM links WHERE vid = ? AND ended_at IS NULL"
        " ORDER BY valid_from DESC, id DESC LIMIT 1",
        (vid,),
    ).fetchone()
    return None if row is None else link_from_row(row)


def _link_visitor(req: LinkRequest, rules: StitchRules, db: sqlite3.Connection) -> LinkOutcome:
    current = _open_link(db, req.vid)
    current_root = resolve(db, current.lead_id) if current else None
    new_root = resolve(db, req.lead_id)
    action = rules.decide(current, current_root, new_root)
    changed_at = req.at if req.changed_at is None else req.changed_at
    if action == "keep":
        assert current is not None
        _fold_touch(db, new_root, req.touch, changed_at)
        return LinkOutcome("kept", current)
    ended = None
    if current is not None:
        db.execute("UPDATE links SET ended_at = ? WHERE id = ?", (req.at, current.id))
        ended = dataclasses.replace(current, ended_at=req.at)
    valid_from = 0 if action == "first" else req.at
    link_id = db.execute(
        "INSERT INTO links (vid, lead_id, site_id, evidence, began_at, valid_from, ip)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (req.vid, req.lead_id, req.site_id, req.evidence, req.at, valid_from, req.ip),
    ).lastrowid
    assert link_id is not None
    link = Link(link_id, req.vid, req.lead_id, req.site_id, req.evidence, req.at, valid_from,
                None, req.ip)  # fmt: skip
    _fold_touch(db, new_root, req.touch, changed_at)
    _bump(db, new_root, changed_at)
    record_change(db, new_root, "identified", changed_at, {
        "lead": new_root, "visitor": req.vid, "site_id": req.site_id,
        "evidence": req.evidence, "link": link_id,
    })  # fmt: skip
    return LinkOutcome("first" if action == "first" else "switched", link, ended)


def _fold_touch(
    db: sqlite3.Connection, lead_id: str, touch: dict[str, Any] | None, at: int
) -> None:
    """First touch: the earliest visit seen for the lead; last touch: the latest.
    ``at`` is the change time (the server's clock): ``updated_at`` never goes back."""
    if not touch:
        return
    row = db.execute(
        "SELECT first_touch, last_touch FROM leads WHERE id = ?", (lead_id,)
    ).fetchone()
    first, last = (to_dict(row[0]), to_dict(row[1])) if row else ({}, {})
    new_first, new_last = touch.get("first") or {}, touch.get("last") or {}
    if new_first and (not first or new_first.get("at", 0) < first.get("at", 0)):
        first = new_first
    if new_last and (not last or new_last.get("at", 0) >= last.get("at", 0)):
        last = new_last
    db.execute(
        "UPDATE leads SET first_touch = ?, last_touch = ?, updated_at = max(updated_at, ?)"
        " WHERE id = ?",
        (to_json(first or None), to_json(last or None), at, lead_id),
    )


def _bump(db: sqlite3.Connection, lead_id: str, at: int) -> None:
    """The lead's view changed (visitors, merged leads): ``updated_since`` must see it."""
    db.execute("UPDATE leads SET updated_at = max(updated_at, ?) WHERE id = ?", (at, lead_id))


def to_dict(value: str | None) -> dict[str, Any]:
    return dict(orjson.loads(value)) if value else {}


class IdentityTables(SQLiteDatabase):
    """Mixed into SQLiteStore."""

    async def create_lead(self, lead: LeadRow) -> tuple[LeadRow, bool]:
        """Insert ``lead`` unless its email index exists; return (the lead, created?)."""

        def insert(db: sqlite3.Connection) -> tuple[LeadRow, bool]:
            try:
                db.execute(
                    f"INSERT INTO leads ({LEAD_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                    (lead.id, lead.email_index, lead.key_id, lead.email, lead.name,
                     lead.company, lead.phone, lead.fields, to_json(lead.first_touch),
                     to_json(lead.last_touch), None, lead.created_at, lead.updated_at),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                row = db.execute(
                    f"SELECT {LEAD_COLUMNS} FROM leads WHERE email_index = ?",
                    (lead.email_index,),
                ).fetchone()
                return lead_from_row(row), False
            record_change(db, lead.id, "created", lead.created_at, {"lead": lead.id})
            return lead, True

        return await self._write(insert)

    async def lead(self, lead_id: str) -> LeadRow | None:
        rows = await self._read(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,))
        return lead_from_row(rows[0]) if rows else None

    async def lead_by_index(self, email_index: bytes) -> LeadRow | None:
        rows = await self._read(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE email_index = ?",
            (email_index,),
        )
        return lead_from_row(rows[0]) if rows else None

    async def resolve_lead(self, lead_id: str) -> str | None:
        """The lead standing for this person now (after merges); None if unknown."""
        current = lead_id
        for _ in range(_MAX_MERGE_DEPTH):
            rows = await self._read("SELECT merged_into FROM leads WHERE id = ?", (current,))
            if not rows:
                return None
            if rows[0][0] is None:
                return current
            current = rows[0][0]
        raise Conflict("merge chain too deep")

    async def leads_page(
        self, *, updated_since: int, after: tuple[int, str] | None, limit: int
    ) -> list[LeadRow]:
        """Unmerged leads by (updated_at, id), for cursor paging."""
        after_at, after_id = after or (updated_since - 1, "")
        rows = await self._read(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE merged_into IS NULL"
            " AND updated_at >= ? AND (updated_at, id) > (?, ?) ORDER BY updated_at, id LIMIT ?",
            (updated_since, after_at, after_id, limit),
        )
        return [lead_from_row(r) for r in rows]

    async def link_visitor(self, req: LinkRequest, rules: StitchRules) -> LinkOutcome:
        return await self._write(lambda db: _link_visitor(req, rules, db))

    async def lead_family(self, root: str) -> list[str]:
        """The lead and every lead merged into it, transitively (an unmerge restores them)."""
        family, frontier = [root], [root]
        while frontier and len(family) < 10_000:
            frontier = await self._in_query(
                "SELECT id FROM leads WHERE merged_into IN ({})", frontier, lambda r: r[0]
            )
            family.extend(frontier)
        return family

    async def links_of_leads(self, lead_ids: Sequence[str]) -> list[Link]:
        return await self._in_query(
            f"SELECT {LINK_COLUMNS} FROM links WHERE lead_id IN ({{}}) ORDER BY began_at, id",
            lead_ids, link_from_row,
        )  # fmt: skip

    async def links_of_visitor(self, vid: str) -> list[Link]:
        rows = await self._read(
            f"SELECT {LINK_COLUMNS} FROM links WHERE vid = ? ORDER BY valid_from, id",
            (vid,),
        )
        return [link_from_row(r) for r in rows]

    async def link_events(self, links: Sequence[Link], *, limit: int) -> list[Event]:
        """The events each link covers (its visitor, within its time range), by time."""
        events: list[Event] = []
        for link in links:
            rows = await self._read(
                f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid = ? AND at >= ?"
                " AND at < ? ORDER BY at, id LIMIT ?",
                (link.vid, link.valid_from, link.ended_at or 2**62, limit),
            )
            events.extend(event_from_row(r) for r in rows)
        events.sort(key=lambda e: (e.at, e.id or 0))
        return events[:limit]

    async def merges_of(self, lead_ids: Sequence[str]) -> list[Merge]:
        found: list[Merge] = await self._in_query(
            f"SELECT {MERGE_COLUMNS} FROM merges WHERE into_lead IN ({{0}})"
            " OR from_lead IN ({0})",
            lead_ids, merge_from_row, repeat=2,
        )  # fmt: skip
        return sorted({m.id: m for m in found}.values(), key=lambda m: (m.at, m.id))

    async def consent_receipts_of(self, vids: Sequence[str]) -> list[ConsentReceipt]:
        return await self._in_query(
            "SELECT id, site_id, vid, analytics, marketing, policy_version, source, at"
            " FROM consent_receipts WHERE vid IN ({}) ORDER BY at, id",
            vids, _receipt_from_row,
        )  # fmt: skip

    async def merge_leads(self, merge: Merge) -> None:
        def apply(db: sqlite3.Connection) -> None:
            for lead_id in (merge.into_lead, merge.from_lead):
                if db.execute("SELECT 1 FROM leads WHERE id = ?", (lead_id,)).fetchone() is None:
                    raise NotFound("lead not found")
            if resolve(db, merge.from_lead) != merge.from_lead:
                raise Conflict("that lead is already merged into another; unmerge it first")
            if (
                resolve(db, merge.into_lead) == merge.from_lead
                or merge.into_lead == merge.from_lead
            ):
                raise Conflict("a lead cannot be merged into itself")
            db.execute("UPDATE leads SET merged_into = ?, updated_at = max(updated_at, ?)"
                       " WHERE id = ?",
                       (merge.into_lead, merge.at, merge.from_lead))  # fmt: skip
            db.execute(f"INSERT INTO merges ({MERGE_COLUMNS}) VALUES ({', '.join('?' * 9)})",
                       _merge_values(merge))  # fmt: skip
            root = resolve(db, merge.into_lead)
            _bump(db, root, merge.at)
            data = {"lead": root, "merged": merge.from_lead, "merge": merge.id}
            record_change(db, root, "merged", merge.at, data)
            record_change(db, merge.from_lead, "merged", merge.at, data)

        await self._write(apply)

    async def unmerge_leads(self, merge_id: str, *, actor: str, reason: str, at: int) -> Merge:
        def apply(db: sqlite3.Connection) -> Merge:
            row = db.execute(
                f"SELECT {MERGE_COLUMNS} FROM merges WHERE id = ?",
                (merge_id,),
            ).fetchone()
            if row is None:
                raise NotFound("merge not found")
            merge = merge_from_row(row)
            if merge.undone_at is not None:
                raise Conflict("that merge was already undone")
            db.execute("UPDATE leads SET merged_into = NULL,"
                       " updated_at = max(updated_at, ?) WHERE id = ?",
                       (at, merge.from_lead))  # fmt: skip
            db.execute("UPDATE merges SET undone_at = ?, undone_by = ?, undo_reason = ?"
                       " WHERE id = ?", (at, actor, reason, merge_id))  # fmt: skip
            root = resolve(db, merge.into_lead)
            _bump(db, root, at)
            data = {"lead": root, "unmerged": merge.from_lead, "merge": merge.id}
            record_change(db, root, "unmerged", at, data)
            record_change(db, merge.from_lead, "unmerged", at, data)
            return dataclasses.replace(merge, undone_at=at, undone_by=actor, undo_reason=reason)

        return await self._write(apply)

    async def open_merge(self, into_lead: str, from_lead: str) -> Merge | None:
        rows = await self._read(
            f"SELECT {MERGE_COLUMNS} FROM merges WHERE into_lead = ? AND from_lead = ?"
            " AND undone_at IS NULL",
            (into_lead, from_lead),
        )
        return merge_from_row(rows[0]) if rows else None

    async def changes_page(self, *, after: int, limit: int) -> list[Change]:
        rows = await self._read(
            "SELECT seq, lead_id, kind, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [change_from_row(r) for r in rows]

    async def _in_query(
        self, sql: str, values: Iterable[Any], convert: Any, *, repeat: int = 1
    ) -> list[Any]:
        """Run ``sql`` with its ``{}`` placeholder(s) expanded to an IN list, in chunks."""
        ordered, out = list(dict.fromkeys(values)), list[Any]()
        for start in range(0, len(ordered), 400):
            chunk = ordered[start : start + 400]
            marks = ", ".join("?" * len(chunk))
            rows = await self._read(sql.format(marks, marks), chunk * repeat)
            out.extend(convert(r) for r in rows)
        return out


def _merge_values(merge: Merge) -> tuple[Any, ...]:
    return (merge.id, merge.into_lead, merge.from_lead, merge.actor, merge.reason, merge.at,
            merge.undone_at, merge.undone_by, merge.undo_reason)  # fmt: skip


def _receipt_from_row(row: Sequence[Any]) -> ConsentReceipt:
    id_, site_id, vid, analytics, marketing, policy, source, at = row
    return ConsentReceipt(id_, site_id, vid, _flag(analytics), _flag(marketing), policy,
                          source, at)  # fmt: skip


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)
