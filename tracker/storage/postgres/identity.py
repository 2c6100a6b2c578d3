"""Leads, visitor links, merges, the change feed and the webhook outbox in PostgreSQL.

Every change to a lead writes its change-feed row and its outbox rows in the same
transaction (``record_change``), so a sync client or a webhook receiver can never miss
one or see one that did not happen. Across collector processes: one email makes one
lead (``ON CONFLICT`` on the email index), a visitor is linked by one transaction at a
time (its advisory lock), and merges (``merges.py``) exclude links and each other.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from tracker.errors import Conflict
from tracker.storage.postgres.database import Lock, PostgresDatabase, lock, lock_visitors
from tracker.storage.postgres.rows import (
    EVENT_COLUMNS,
    LEAD_COLUMNS,
    LINK_COLUMNS,
    RECEIPT_COLUMNS,
    change_from_row,
    event_from_row,
    lead_from_row,
    link_from_row,
    marks,
    receipt_from_row,
    to_json,
)
from tracker.storage.records import (
    Change,
    ConsentReceipt,
    Event,
    LeadRow,
    Link,
    LinkOutcome,
    LinkRequest,
    StitchRules,
)

_MAX_MERGE_DEPTH = 64


async def record_change(
    db: asyncpg.Connection, lead_id: str, kind: str, at: int, data: dict[str, Any]
) -> None:
    """The change-feed row and one outbox row per subscribed webhook, in the caller's
    transaction. ``data`` must hold ids only: it is rendered into a payload at send time.

    The CHANGES lock, held to commit, makes ``seq`` order commit order. Callers take
    every row lock they need before this, so its holder never waits on another."""
    await lock(db, Lock.CHANGES)
    await db.execute("INSERT INTO changes (lead_id, kind, at) VALUES ($1, $2, $3)",
                     lead_id, kind, at)  # fmt: skip
    event_type = f"lead.{kind}"
    for webhook_id, events in await db.fetch(
        "SELECT id, events FROM webhooks WHERE disabled_at IS NULL"
    ):
        if f'"{event_type}"' in events:
            await db.execute(
                "INSERT INTO outbox (id, webhook_id, type, lead_id, data, created_at,"
                " next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                secrets.token_hex(16), webhook_id, event_type, lead_id, to_json(data), at, at,
            )  # fmt: skip


async def resolve(db: asyncpg.Connection, lead_id: str) -> str:
    """Follow ``merged_into`` to the lead that stands for this person now."""
    current = lead_id
    for _ in range(_MAX_MERGE_DEPTH):
        row = await db.fetchrow("SELECT merged_into FROM leads WHERE id = $1", current)
        if row is None or row[0] is None:
            return current
        current = row[0]
    raise Conflict("merge chain too deep")


async def _open_link(db: asyncpg.Connection, vid: str) -> Link | None:
    row = await db.fetchrow(
        f"SELECT {LINK_COLUMNS} FROM links WHERE vid = $1 AND ended_at IS NULL"
        " ORDER BY valid_from DESC, id DESC LIMIT 1",
        vid,
    )
    return None if row is None else link_from_row(row)


async def _link_visitor(
    req: LinkRequest, rules: StitchRules, db: asyncpg.Connection
) -> LinkOutcome:
    await lock_visitors(db, [req.vid])
    await lock(db, Lock.LEAD_GRAPH, shared=True)
    current = await _open_link(db, req.vid)
    current_root = await resolve(db, current.lead_id) if current else None
    new_root = await resolve(db, req.lead_id)
    action = rules.decide(current, current_root, new_root)
    changed_at = req.at if req.changed_at is None else req.changed_at
    if action == "keep":
        assert current is not None
        await _fold_touch(db, new_root, req.touch, changed_at)
        return LinkOutcome("kept", current)
    ended = None
    if current is not None:
        await db.execute("UPDATE links SET ended_at = $1 WHERE id = $2", req.at, current.id)
        ended = dataclasses.replace(current, ended_at=req.at)
    valid_from = 0 if action == "first" else req.at
    link_id = await db.fetchval(
        "INSERT INTO links (vid, lead_id, site_id, evidence, began_at, valid_from, ip)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        req.vid, req.lead_id, req.site_id, req.evidence, req.at, valid_from, req.ip,
    )  # fmt: skip
    link = Link(link_id, req.vid, req.lead_id, req.site_id, req.evidence, req.at, valid_from,
                None, req.ip)  # fmt: skip
    await _fold_touch(db, new_root, req.touch, changed_at)
    await bump(db, new_root, changed_at)
    await record_change(db, new_root, "identified", changed_at, {
        "lead": new_root, "visitor": req.vid, "site_id": req.site_id,
        "evidence": req.evidence, "link": link_id,
    })  # fmt: skip
    return LinkOutcome("first" if action == "first" else "switched", link, ended)


async def _fold_touch(
    db: asyncpg.Connection, lead_id: str, touch: dict[str, Any] | None, at: int
) -> None:
    """First touch: the earliest visit seen for the lead; last touch: the latest.
    ``at`` is the change time (the server's clock): ``updated_at`` never goes back.

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: the link just inserted holds a KEY SHARE
    lock on the lead (its foreign key), and so may another collector's link to the same
    lead; FOR UPDATE would wait on that one while it waits on ours (a deadlock)."""
    if not touch:
        return
    row = await db.fetchrow(
        "SELECT first_touch, last_touch FROM leads WHERE id = $1 FOR NO KEY UPDATE", lead_id
    )
    first, last = (to_dict(row[0]), to_dict(row[1])) if row else ({}, {})
    new_first, new_last = touch.get("first") or {}, touch.get("last") or {}
    if new_first and (not first or new_first.get("at", 0) < first.get("at", 0)):
        first = new_first
    if new_last and (not last or new_last.get("at", 0) >= last.get("at", 0)):
        last = new_last
    await db.execute(
        "UPDATE leads SET first_touch = $1, last_touch = $2,"
        " updated_at = GREATEST(updated_at, $3) WHERE id = $4",
        to_json(first or None), to_json(last or None), at, lead_id,
    )  # fmt: skip


async def bump(db: asyncpg.Connection, lead_id: str, at: int) -> None:
    """The lead's view changed (visitors, merged leads): ``updated_since`` must see it."""
    await db.execute("UPDATE leads SET updated_at = GREATEST(updated_at, $1) WHERE id = $2",
                     at, lead_id)  # fmt: skip


def to_dict(value: str | None) -> dict[str, Any]:
    return dict(orjson.loads(value)) if value else {}


class IdentityTables(PostgresDatabase):
    """Mixed into PostgresStore."""

    async def create_lead(self, lead: LeadRow) -> tuple[LeadRow, bool]:
        """Insert ``lead`` unless its email index exists; return (the lead, created?).

        Two collectors identifying one email at once: the second INSERT waits for the
        first to commit, then does nothing and reads the first one's lead."""

        async def insert(db: asyncpg.Connection) -> tuple[LeadRow, bool]:
            created = await db.fetchval(
                f"INSERT INTO leads ({LEAD_COLUMNS}) VALUES ({marks(13)})"
                " ON CONFLICT (email_index) DO NOTHING RETURNING id",
                lead.id, lead.email_index, lead.key_id, lead.email, lead.name, lead.company,
                lead.phone, lead.fields, to_json(lead.first_touch), to_json(lead.last_touch),
                None, lead.created_at, lead.updated_at,
            )  # fmt: skip
            if created is None:
                row = await db.fetchrow(
                    f"SELECT {LEAD_COLUMNS} FROM leads WHERE email_index = $1", lead.email_index
                )
                return lead_from_row(row), False
            await record_change(db, lead.id, "created", lead.created_at, {"lead": lead.id})
            return lead, True

        return await self._transaction(insert)

    async def lead(self, lead_id: str) -> LeadRow | None:
        rows = await self._read(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1", lead_id)
        return lead_from_row(rows[0]) if rows else None

    async def lead_by_index(self, email_index: bytes) -> LeadRow | None:
        rows = await self._read(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE email_index = $1", email_index
        )
        return lead_from_row(rows[0]) if rows else None

    async def resolve_lead(self, lead_id: str) -> str | None:
        """The lead standing for this person now (after merges); None if unknown."""
        current = lead_id
        for _ in range(_MAX_MERGE_DEPTH):
            rows = await self._read("SELECT merged_into FROM leads WHERE id = $1", current)
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
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE merged_into IS NULL AND updated_at >= $1"
            " AND (updated_at, id) > ($2, $3) ORDER BY updated_at, id LIMIT $4",
            updated_since, after_at, after_id, limit,
        )  # fmt: skip
        return [lead_from_row(r) for r in rows]

    async def link_visitor(self, req: LinkRequest, rules: StitchRules) -> LinkOutcome:
        return await self._transaction(lambda db: _link_visitor(req, rules, db))

    async def lead_family(self, root: str) -> list[str]:
        """The lead and every lead merged into it, transitively (an unmerge restores them)."""
        family, frontier = [root], [root]
        while frontier and len(family) < 10_000:
            rows = await self._read(
                "SELECT id FROM leads WHERE merged_into = ANY($1::text[])", frontier
            )
            frontier = [r[0] for r in rows]
            family.extend(frontier)
        return family

    async def links_of_leads(self, lead_ids: Sequence[str]) -> list[Link]:
        rows = await self._read(
            f"SELECT {LINK_COLUMNS} FROM links WHERE lead_id = ANY($1::text[])"
            " ORDER BY began_at, id",
            list(lead_ids),
        )
        return [link_from_row(r) for r in rows]

    async def links_of_visitor(self, vid: str) -> list[Link]:
        rows = await self._read(
            f"SELECT {LINK_COLUMNS} FROM links WHERE vid = $1 ORDER BY valid_from, id", vid
        )
        return [link_from_row(r) for r in rows]

    async def link_events(self, links: Sequence[Link], *, limit: int) -> list[Event]:
        """The events each link covers (its visitor, within its time range), by time."""
        events: list[Event] = []
        for link in links:
            rows = await self._read(
                f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid = $1 AND at >= $2"
                " AND at < $3 ORDER BY at, id LIMIT $4",
                link.vid, link.valid_from, link.ended_at or 2**62, limit,
            )  # fmt: skip
            events.extend(event_from_row(r) for r in rows)
        events.sort(key=lambda e: (e.at, e.id or 0))
        return events[:limit]

    async def consent_receipts_of(self, vids: Sequence[str]) -> list[ConsentReceipt]:
        rows = await self._read(
            f"SELECT {RECEIPT_COLUMNS} FROM consent_receipts WHERE vid = ANY($1::text[])"
            " ORDER BY at, id",
            list(vids),
        )
        return [receipt_from_row(r) for r in rows]

    async def changes_page(self, *, after: int, limit: int) -> list[Change]:
        rows = await self._read(
            "SELECT seq, lead_id, kind, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
            after, limit,
        )  # fmt: skip
        return [change_from_row(r) for r in rows]
