"""Data-subject requests, erasure, retention purges and the audit log in PostgreSQL.

An erasure deletes in one transaction, after locking the visitors and the lead graph it
touches. Deleted rows stay in the table files as dead tuples until VACUUM reclaims them
(autovacuum does), and in the server's WAL until it is recycled: unlike SQLite's
``secure_delete``, PostgreSQL does not zero them. Personal data is ciphertext under a
key the erasure destroys, so what lingers of it is unreadable; what lingers of the rest
(page URLs, titles) is the operator's to protect, as with any database's free space
(encrypted volumes; see the README). Retention deletes in small batches, each its own
short transaction, and drops a whole monthly partition when every site's cutoff is past.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from tracker.storage.postgres.database import Lock, PostgresDatabase, lock, lock_visitors
from tracker.storage.postgres.dialect import count_of
from tracker.storage.postgres.identity import record_change
from tracker.storage.postgres.rows import from_json, to_json
from tracker.storage.records import (
    AuditChain,
    AuditRow,
    ErasureCounts,
    ErasurePlan,
    PrivacyRequest,
)

_REQUEST_COLUMNS = (
    "id, kind, status, subject, received_at, due_at, completed_at, export_path, detail"
)
_NO_END = 2**62


def _request_from_row(row: Sequence[Any]) -> PrivacyRequest:
    id_, kind, status, subject, received_at, due_at, completed_at, export_path, detail = row
    return PrivacyRequest(id_, kind, status, subject, received_at, due_at, completed_at,
                          export_path, from_json(detail))  # fmt: skip


async def _erase(plan: ErasurePlan, db: asyncpg.Connection) -> ErasureCounts:
    counts = ErasureCounts()
    whole = list(dict.fromkeys(plan.whole_vids))
    await lock_visitors(db, [*whole, *(link.vid for link in plan.links)])
    await lock(db, Lock.LEAD_GRAPH)
    for link in plan.links:
        if link.vid not in whole:  # a shared browser: only this person's time range goes
            counts.events += count_of(await db.execute(
                "DELETE FROM events WHERE vid = $1 AND at >= $2 AND at < $3",
                link.vid, link.valid_from, link.ended_at or _NO_END,
            ))  # fmt: skip
    if whole:
        counts.events += await _delete(db, "DELETE FROM events WHERE vid = ANY($1::text[])", whole)
        counts.receipts += await _delete(
            db, "DELETE FROM consent_receipts WHERE vid = ANY($1::text[])", whole
        )
        await db.execute("DELETE FROM consent_state WHERE vid = ANY($1::text[])", whole)
        counts.links += await _delete(db, "DELETE FROM links WHERE vid = ANY($1::text[])", whole)
    leads = list(plan.lead_ids)
    if leads:
        counts.links += await _delete(
            db, "DELETE FROM links WHERE lead_id = ANY($1::text[])", leads
        )
        counts.merges += await _delete(
            db, "DELETE FROM merges WHERE into_lead = ANY($1::text[])"
            " OR from_lead = ANY($1::text[])", leads,
        )  # fmt: skip
        counts.outbox += await _delete(
            db, "DELETE FROM outbox WHERE lead_id = ANY($1::text[])", leads
        )
        await db.execute("DELETE FROM changes WHERE lead_id = ANY($1::text[])", leads)
        await db.execute("DELETE FROM submissions WHERE lead_id = ANY($1::text[])", leads)
        await db.execute("UPDATE leads SET merged_into = NULL WHERE id = ANY($1::text[])", leads)
        counts.leads += await _delete(db, "DELETE FROM leads WHERE id = ANY($1::text[])", leads)
        # The tombstone: sync clients and webhook receivers delete their copies too.
        await record_change(
            db, leads[0], "erased", plan.at, {"lead": leads[0], "merged": leads[1:]}
        )
    await db.execute("UPDATE erasure_marker SET applied = GREATEST(applied, $1) WHERE id = 1",
                     plan.ledger_seq)  # fmt: skip
    return counts


async def _delete(db: asyncpg.Connection, sql: str, values: list[str]) -> int:
    return count_of(await db.execute(sql, values))


async def _append_audit(row: AuditRow, chain: AuditChain, db: asyncpg.Connection) -> AuditRow:
    await lock(db, Lock.AUDIT)  # the last MAC cannot change under us until commit
    last = await db.fetchrow("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, previous = (last[0] + 1, bytes(last[1])) if last else (1, b"")
    row = AuditRow(seq, row.at, row.actor, row.action, row.subject, row.detail)
    mac = chain.mac(previous, row)
    await db.execute(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, mac)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        seq, row.at, row.actor, row.action, row.subject, to_json(row.detail), mac,
    )  # fmt: skip
    return AuditRow(seq, row.at, row.actor, row.action, row.subject, row.detail, mac)


class LegalTables(PostgresDatabase):
    """Mixed into PostgresStore."""

    # -- requests ------------------------------------------------------------------
    async def add_request(self, req: PrivacyRequest) -> None:
        await self._execute(
            f"INSERT INTO privacy_requests ({_REQUEST_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            req.id, req.kind, req.status, req.subject, req.received_at, req.due_at,
            req.completed_at, req.export_path, to_json(req.detail),
        )  # fmt: skip

    async def finish_request(
        self, request_id: str, *, status: str, at: int, detail: dict[str, Any],
        export_path: str | None = None,
    ) -> None:  # fmt: skip
        await self._execute(
            "UPDATE privacy_requests SET status = $1, completed_at = $2, detail = $3,"
            " export_path = COALESCE($4, export_path) WHERE id = $5",
            status, at, to_json(detail), export_path, request_id,
        )  # fmt: skip

    async def request(self, request_id: str) -> PrivacyRequest | None:
        rows = await self._read(
            f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests WHERE id = $1", request_id
        )
        return _request_from_row(rows[0]) if rows else None

    async def requests(
        self, *, subjects: Sequence[str] = (), limit: int = 1000
    ) -> list[PrivacyRequest]:
        if subjects:
            rows = await self._read(
                f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests"
                " WHERE subject = ANY($1::text[]) ORDER BY received_at",
                list(subjects),
            )
        else:
            rows = await self._read(
                f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests"
                " ORDER BY received_at DESC LIMIT $1",
                limit,
            )
        return [_request_from_row(r) for r in rows]

    async def forget_export_paths(self, request_ids: Sequence[str]) -> None:
        if request_ids:
            await self._execute(
                "UPDATE privacy_requests SET export_path = NULL WHERE id = ANY($1::text[])",
                list(request_ids),
            )

    # -- erasure -------------------------------------------------------------------
    async def erase(self, plan: ErasurePlan) -> ErasureCounts:
        return await self._transaction(lambda db: _erase(plan, db))

    async def erasure_marker(self) -> int:
        value = await self._read_value("SELECT applied FROM erasure_marker WHERE id = 1")
        return int(value or 0)

    # -- retention -----------------------------------------------------------------
    async def purge_events(self, site_id: int, before: int, *, limit: int) -> int:
        # `at < $2` outside too, so only the partitions that can hold such rows are visited.
        return count_of(await self._execute(
            "DELETE FROM events WHERE at < $2 AND id IN (SELECT id FROM events"
            " WHERE site_id = $1 AND at < $2 LIMIT $3)",
            site_id, before, limit,
        ))  # fmt: skip

    async def count_events_before(self, site_id: int, before: int) -> int:
        return int(await self._read_value(
            "SELECT COUNT(*) FROM events WHERE site_id = $1 AND at < $2", site_id, before
        ))  # fmt: skip

    async def idle_visitors(self, site_id: int, before: int, *, limit: int) -> list[str]:
        """Never-identified visitors of a site whose last activity is before ``before``
        (their last event, or their last consent decision), in one scan."""
        rows = await self._read(
            "SELECT vid FROM (SELECT vid, MAX(at) AS last FROM events WHERE site_id = $1"
            " GROUP BY vid UNION ALL SELECT vid, at FROM consent_state WHERE site_id = $1) AS a"
            " GROUP BY vid HAVING MAX(last) < $2 AND vid NOT IN (SELECT vid FROM links)"
            " LIMIT $3",
            site_id, before, limit,
        )  # fmt: skip
        return [r[0] for r in rows]

    async def purge_visitor_state(self, site_id: int, vids: Sequence[str]) -> int:
        async def purge(db: asyncpg.Connection) -> int:
            await db.execute("DELETE FROM events WHERE site_id = $1 AND vid = ANY($2::text[])",
                             site_id, list(vids))  # fmt: skip
            return count_of(await db.execute(
                "DELETE FROM consent_state WHERE site_id = $1 AND vid = ANY($2::text[])",
                site_id, list(vids),
            ))  # fmt: skip

        return await self._transaction(purge) if vids else 0

    async def purge_receipts(self, site_id: int, before: int, *, limit: int) -> int:
        """Receipts past their own period, unless they are a visitor's current state."""
        return count_of(await self._execute(
            "DELETE FROM consent_receipts WHERE id IN (SELECT r.id FROM consent_receipts r"
            " WHERE r.site_id = $1 AND r.at < $2 AND r.id NOT IN"
            " (SELECT receipt_id FROM consent_state) LIMIT $3)",
            site_id, before, limit,
        ))  # fmt: skip

    async def count_receipts_before(self, site_id: int, before: int) -> int:
        return int(await self._read_value(
            "SELECT COUNT(*) FROM consent_receipts WHERE site_id = $1 AND at < $2"
            " AND id NOT IN (SELECT receipt_id FROM consent_state)",
            site_id, before,
        ))  # fmt: skip

    async def inactive_leads(self, before: int, *, limit: int) -> list[str]:
        """Unmerged leads unchanged since ``before`` with no event of theirs since then."""
        rows = await self._read(
            "SELECT l.id FROM leads l WHERE l.merged_into IS NULL AND l.updated_at < $1"
            " AND NOT EXISTS (SELECT 1 FROM links k JOIN events e ON e.vid = k.vid"
            " AND e.at >= k.valid_from AND e.at < COALESCE(k.ended_at, $2)"
            " WHERE k.lead_id = l.id AND e.at >= $1) LIMIT $3",
            before, _NO_END, limit,
        )  # fmt: skip
        return [r[0] for r in rows]

    # -- audit log -------------------------------------------------------------------
    async def append_audit(self, row: AuditRow, chain: AuditChain) -> AuditRow:
        return await self._transaction(lambda db: _append_audit(row, chain, db))

    async def audit_page(self, *, after: int, limit: int) -> list[AuditRow]:
        rows = await self._read(
            "SELECT seq, at, actor, action, subject, detail, mac FROM audit_log"
            " WHERE seq > $1 ORDER BY seq LIMIT $2",
            after, limit,
        )  # fmt: skip
        return [
            AuditRow(seq, at, actor, action, subject, orjson.loads(detail), bytes(mac))
            for seq, at, actor, action, subject, detail, mac in rows
        ]
