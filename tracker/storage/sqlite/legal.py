"""Data-subject requests, erasure, retention purges and the audit log in SQLite.

Deletions run with ``secure_delete`` (set on every connection), so erased rows are
zeroed in the database pages; callers truncate the WAL afterwards so no old frame keeps
a copy. Retention deletes in small batches, each its own short transaction, so the
collector's writes interleave with them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from tracker.storage.records import (
    AuditChain,
    AuditRow,
    ErasureCounts,
    ErasurePlan,
    PrivacyRequest,
)
from tracker.storage.rows import from_json, to_json
from tracker.storage.sqlite.database import SQLiteDatabase
from tracker.storage.sqlite.identity import record_change

_REQUEST_COLUMNS = (
    "id, kind, status, subject, received_at, due_at, completed_at, export_path, detail"
)
_NO_END = 2**62


def _request_from_row(row: Sequence[Any]) -> PrivacyRequest:
    id_, kind, status, subject, received_at, due_at, completed_at, export_path, detail = row
    return PrivacyRequest(
        id_,
        kind,
        status,
        subject,
        received_at,
        due_at,
        completed_at,
        export_path,
        from_json(detail),
    )


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _erase(plan: ErasurePlan, db: sqlite3.Connection) -> ErasureCounts:
    counts = ErasureCounts()
    whole = set(plan.whole_vids)
    for link in plan.links:
        if link.vid not in whole:  # a shared browser: only this person's time range goes
            counts.events += db.execute(
                "DELETE FROM events WHERE vid = ? AND at >= ? AND at < ?",
                (link.vid, link.valid_from, link.ended_at or _NO_END),
            ).rowcount
    for vid in whole:
        counts.events += db.execute("DELETE FROM events WHERE vid = ?", (vid,)).rowcount
        counts.receipts += db.execute("DELETE FROM consent_receipts WHERE vid = ?", (vid,)).rowcount
        db.execute("DELETE FROM consent_state WHERE vid = ?", (vid,))
        counts.links += db.execute("DELETE FROM links WHERE vid = ?", (vid,)).rowcount
    leads = list(plan.lead_ids)
    if leads:
        in_leads = _marks(leads)
        counts.links += db.execute(
            f"DELETE FROM links WHERE lead_id IN ({in_leads})", leads
        ).rowcount
        counts.merges += db.execute(
            f"DELETE FROM merges WHERE into_lead IN ({in_leads}) OR from_lead IN ({in_leads})",
            leads * 2,
        ).rowcount
        counts.outbox += db.execute(
            f"DELETE FROM outbox WHERE lead_id IN ({in_leads})", leads
        ).rowcount
        db.execute(f"DELETE FROM changes WHERE lead_id IN ({in_leads})", leads)
        db.execute(f"DELETE FROM submissions WHERE lead_id IN ({in_leads})", leads)
        db.execute(f"UPDATE leads SET merged_into = NULL WHERE id IN ({in_leads})", leads)
        counts.leads += db.execute(f"DELETE FROM leads WHERE id IN ({in_leads})", leads).rowcount
        # The tombstone: sync clients and webhook receivers delete their copies too.
        record_change(db, leads[0], "erased", plan.at, {"lead": leads[0], "merged": leads[1:]})
    db.execute(
        "UPDATE erasure_marker SET applied = MAX(applied, ?) WHERE id = 1", (plan.ledger_seq,)
    )
    return counts


def _append_audit(row: AuditRow, chain: AuditChain, db: sqlite3.Connection) -> AuditRow:
    last = db.execute("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, previous = (last[0] + 1, bytes(last[1])) if last else (1, b"")
    row = AuditRow(seq, row.at, row.actor, row.action, row.subject, row.detail)
    mac = chain.mac(previous, row)
    db.execute(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, mac)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, row.at, row.actor, row.action, row.subject, to_json(row.detail), mac),
    )
    return AuditRow(seq, row.at, row.actor, row.action, row.subject, row.detail, mac)


class LegalTables(SQLiteDatabase):
    """Mixed into SQLiteStore."""

    # -- requests ------------------------------------------------------------------
    async def add_request(self, req: PrivacyRequest) -> None:
        await self._write(
            lambda db: db.execute(
                f"INSERT INTO privacy_requests ({_REQUEST_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (req.id, req.kind, req.status, req.subject, req.received_at, req.due_at,
                 req.completed_at, req.export_path, to_json(req.detail)),
            )
        )  # fmt: skip

    async def finish_request(
        self, request_id: str, *, status: str, at: int, detail: dict[str, Any],
        export_path: str | None = None,
    ) -> None:  # fmt: skip
        await self._write(
            lambda db: db.execute(
                "UPDATE privacy_requests SET status = ?, completed_at = ?, detail = ?,"
                " export_path = COALESCE(?, export_path) WHERE id = ?",
                (status, at, to_json(detail), export_path, request_id),
            )
        )

    async def request(self, request_id: str) -> PrivacyRequest | None:
        rows = await self._read(
            f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests WHERE id = ?", (request_id,)
        )
        return _request_from_row(rows[0]) if rows else None

    async def requests(
        self, *, subjects: Sequence[str] = (), limit: int = 1000
    ) -> list[PrivacyRequest]:
        if subjects:
            rows = await self._read(
                f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests WHERE subject IN"
                f" ({_marks(subjects)}) ORDER BY received_at",
                list(subjects),
            )
        else:
            rows = await self._read(
                f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests"
                " ORDER BY received_at DESC LIMIT ?",
                (limit,),
            )
        return [_request_from_row(r) for r in rows]

    async def forget_export_paths(self, request_ids: Sequence[str]) -> None:
        if request_ids:
            await self._write(
                lambda db: db.execute(
                    "UPDATE privacy_requests SET export_path = NULL"
                    f" WHERE id IN ({_marks(request_ids)})",
                    list(request_ids),
                )
            )

    # -- erasure -------------------------------------------------------------------
    async def erase(self, plan: ErasurePlan) -> ErasureCounts:
        return await self._write(lambda db: _erase(plan, db))

    async def erasure_marker(self) -> int:
        rows = await self._read("SELECT applied FROM erasure_marker WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    # -- retention -----------------------------------------------------------------
    async def purge_events(self, site_id: int, before: int, *, limit: int) -> int:
        def purge(db: sqlite3.Connection) -> int:
            return int(
                db.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events"
                    " WHERE site_id = ? AND at < ? LIMIT ?)",
                    (site_id, before, limit),
                ).rowcount
            )

        return await self._write(purge)

    async def drop_expired_partitions(self, before: int) -> int:
        """Events are one table here, not partitions: nothing to drop."""
        return 0

    async def count_events_before(self, site_id: int, before: int) -> int:
        rows = await self._read(
            "SELECT COUNT(*) FROM events WHERE site_id = ? AND at < ?", (site_id, before)
        )
        return int(rows[0][0])

    async def idle_visitors(self, site_id: int, before: int, *, limit: int) -> list[str]:
        """Never-identified visitors of a site whose last activity is before ``before``
        (their last event, or their last consent decision), in one scan."""
        rows = await self._read(
            "SELECT vid FROM (SELECT vid, MAX(at) AS last FROM events WHERE site_id = ?"
            " GROUP BY vid UNION ALL SELECT vid, at FROM consent_state WHERE site_id = ?)"
            " GROUP BY vid HAVING MAX(last) < ? AND vid NOT IN (SELECT vid FROM links)"
            " LIMIT ?",
            (site_id, site_id, before, limit),
        )
        return [r[0] for r in rows]

    async def purge_visitor_state(self, site_id: int, vids: Sequence[str]) -> int:
        def purge(db: sqlite3.Connection) -> int:
            db.execute(
                f"DELETE FROM events WHERE site_id = ? AND vid IN ({_marks(vids)})",
                [site_id, *vids],
            )
            return int(
                db.execute(
                    f"DELETE FROM consent_state WHERE site_id = ? AND vid IN ({_marks(vids)})",
                    [site_id, *vids],
                ).rowcount
            )

        return await self._write(purge) if vids else 0

    async def purge_receipts(self, site_id: int, before: int, *, limit: int) -> int:
        """Receipts past their own period, unless they are a visitor's current state."""

        def purge(db: sqlite3.Connection) -> int:
            return int(
                db.execute(
                    "DELETE FROM consent_receipts WHERE id IN (SELECT r.id FROM"
                    " consent_receipts r WHERE r.site_id = ? AND r.at < ? AND r.id NOT IN"
                    " (SELECT receipt_id FROM consent_state) LIMIT ?)",
                    (site_id, before, limit),
                ).rowcount
            )

        return await self._write(purge)

    async def count_receipts_before(self, site_id: int, before: int) -> int:
        rows = await self._read(
            "SELECT COUNT(*) FROM consent_receipts WHERE site_id = ? AND at < ?"
            " AND id NOT IN (SELECT receipt_id FROM consent_state)",
            (site_id, before),
        )
        return int(rows[0][0])

    async def inactive_leads(self, before: int, *, limit: int) -> list[str]:
        """Unmerged leads unchanged since ``before`` with no event of theirs since then."""
        rows = await self._read(
            "SELECT l.id FROM leads l WHERE l.merged_into IS NULL AND l.updated_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM links k JOIN events e ON e.vid = k.vid"
            " AND e.at >= k.valid_from AND e.at < COALESCE(k.ended_at, ?)"
            " WHERE k.lead_id = l.id AND e.at >= ?) LIMIT ?",
            (before, _NO_END, before, limit),
        )
        return [r[0] for r in rows]

    # -- audit log -------------------------------------------------------------------
    async def append_audit(self, row: AuditRow, chain: AuditChain) -> AuditRow:
        return await self._write(lambda db: _append_audit(row, chain, db))

    async def audit_page(self, *, after: int, limit: int) -> list[AuditRow]:
        rows = await self._read(
            "SELECT seq, at, actor, action, subject, detail, mac FROM audit_log"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [
            AuditRow(seq, at, actor, action, subject, orjson.loads(detail), bytes(mac))
            for seq, at, actor, action, subject, detail, mac in rows
        ]
