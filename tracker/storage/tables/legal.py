"""Data-subject requests and erasure.

An erasure applies a plan ``privacy.dsr`` made (which leads, which links, which whole
visitors): it decides nothing itself. It deletes in one transaction, after locking the
visitors and the lead graph it touches (PostgreSQL), writes the tombstone and moves the
erasure marker, so a restored database knows which ledger entries to apply again.

Where deleted rows linger: SQLite runs with ``secure_delete``, so they are zeroed in the
database pages, and callers truncate the WAL afterwards so no old frame keeps a copy.
PostgreSQL keeps them as dead tuples until VACUUM reclaims them (autovacuum does), and
in the server's WAL until it is recycled. Personal data is ciphertext under a key the
erasure destroys, so what lingers of it is unreadable; what lingers of the rest (page
URLs, titles) is the operator's to protect, as with any database's free space
(encrypted volumes; see the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.storage.records import ErasureCounts, ErasurePlan, Link, PrivacyRequest
from tracker.storage.rows import from_json, to_json
from tracker.storage.script import Lock, LockName, Script, count, lock_visitors, rows, run, value
from tracker.storage.tables import Tables, rollups
from tracker.storage.tables.changes import record_change
from tracker.storage.tables.matching import erase_matching

_REQUEST_COLUMNS = (
    "id, kind, status, subject, received_at, due_at, completed_at, export_path, detail"
)
NO_END = 2**62
"""The end of an open link's time range (later than any event)."""


def _request_from_row(row: Sequence[Any]) -> PrivacyRequest:
    id_, kind, status, subject, received_at, due_at, completed_at, export_path, detail = row
    return PrivacyRequest(id_, kind, status, subject, received_at, due_at, completed_at,
                          export_path, from_json(detail))  # fmt: skip


# -- requests ------------------------------------------------------------------------
def add_request(req: PrivacyRequest) -> Script[None]:
    yield run(
        f"INSERT INTO privacy_requests ({_REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        req.id, req.kind, req.status, req.subject, req.received_at, req.due_at,
        req.completed_at, req.export_path, to_json(req.detail),
    )  # fmt: skip


def finish_request(request_id: str, status: str, at: int, detail: dict[str, Any],
                   export_path: str | None) -> Script[None]:  # fmt: skip
    yield run(
        "UPDATE privacy_requests SET status = ?, completed_at = ?, detail = ?,"
        " export_path = COALESCE(?, export_path) WHERE id = ?",
        status, at, to_json(detail), export_path, request_id,
    )  # fmt: skip


def request(request_id: str) -> Script[PrivacyRequest | None]:
    found = yield rows(f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests WHERE id = ?", request_id)
    return _request_from_row(found[0]) if found else None


def requests(subjects: Sequence[str], limit: int) -> Script[list[PrivacyRequest]]:
    if subjects:
        found = yield rows(
            f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests WHERE subject IN ?"
            " ORDER BY received_at",
            list(subjects),
        )
    else:
        found = yield rows(
            f"SELECT {_REQUEST_COLUMNS} FROM privacy_requests ORDER BY received_at DESC LIMIT ?",
            limit,
        )
    return [_request_from_row(r) for r in found]


def forget_export_paths(request_ids: Sequence[str]) -> Script[None]:
    yield run("UPDATE privacy_requests SET export_path = NULL WHERE id IN ?", list(request_ids))


# -- erasure -------------------------------------------------------------------------
def erase(plan: ErasurePlan) -> Script[ErasureCounts]:
    """Everything the plan names goes, in one transaction, with the tombstone."""
    counts = ErasureCounts()
    whole = list(dict.fromkeys(plan.whole_vids))
    yield from lock_visitors([*whole, *(link.vid for link in plan.links)])
    yield Lock(LockName.LEAD_GRAPH)
    touched = {*whole, *(link.vid for link in plan.links)}
    before = yield from rollups.snapshot(touched)  # the person's page views leave the counts
    counts.events += yield from _erase_link_ranges(plan.links, set(whole))
    if whole:
        yield from _erase_visitors(whole, counts)
    yield from rollups.settle(touched, before)
    leads = list(plan.lead_ids)
    if leads:
        yield from _erase_leads(leads, counts)
        # The tombstone: sync clients and webhook receivers delete their copies too. It
        # names the plan's first lead: the person's lead (those merged into it follow).
        yield from record_change(
            leads[0], "erased", plan.at, {"lead": leads[0], "merged": leads[1:]}
        )
    yield run(
        "UPDATE erasure_marker SET applied = GREATEST(applied, ?) WHERE id = 1", plan.ledger_seq
    )
    return counts


def _erase_link_ranges(links: Sequence[Link], whole: set[str]) -> Script[int]:
    """A shared browser's events of this person's time on it (a whole visitor's events
    all go anyway)."""
    erased = 0
    for link in links:
        if link.vid not in whole:
            erased += yield count(
                "DELETE FROM events WHERE vid = ? AND at >= ? AND at < ?",
                link.vid, link.valid_from, link.ended_at or NO_END,
            )  # fmt: skip
    return erased


def _erase_visitors(vids: list[str], counts: ErasureCounts) -> Script[None]:
    counts.events += yield count("DELETE FROM events WHERE vid IN ?", vids)
    counts.receipts += yield count("DELETE FROM consent_receipts WHERE vid IN ?", vids)
    yield run("DELETE FROM consent_state WHERE vid IN ?", vids)
    counts.links += yield count("DELETE FROM links WHERE vid IN ?", vids)


def _erase_leads(leads: list[str], counts: ErasureCounts) -> Script[None]:
    counts.links += yield count("DELETE FROM links WHERE lead_id IN ?", leads)
    counts.merges += yield count(
        "DELETE FROM merges WHERE into_lead IN ? OR from_lead IN ?", leads, leads
    )
    counts.outbox += yield count("DELETE FROM outbox WHERE lead_id IN ?", leads)
    yield run("DELETE FROM changes WHERE lead_id IN ?", leads)
    yield run("DELETE FROM submissions WHERE lead_id IN ?", leads)
    yield run("DELETE FROM score_ledger WHERE lead_id IN ?", leads)  # the ledger goes too
    yield run("DELETE FROM lead_scores WHERE lead_id IN ?", leads)
    yield run("DELETE FROM hot_crossings WHERE lead_id IN ?", leads)
    yield from erase_matching(leads)
    yield run("UPDATE leads SET merged_into = NULL WHERE id IN ?", leads)
    counts.leads += yield count("DELETE FROM leads WHERE id IN ?", leads)


def erasure_marker() -> Script[int]:
    applied = yield value("SELECT applied FROM erasure_marker WHERE id = 1")
    return int(applied or 0)


class LegalTables(Tables):
    """Data-subject requests and erasure: mixed into each backend's store."""

    async def add_request(self, req: PrivacyRequest) -> None:
        await self.transact(partial(add_request, req))

    async def finish_request(
        self, request_id: str, *, status: str, at: int, detail: dict[str, Any],
        export_path: str | None = None,
    ) -> None:  # fmt: skip
        await self.transact(partial(finish_request, request_id, status, at, detail, export_path))

    async def request(self, request_id: str) -> PrivacyRequest | None:
        return await self.read(request(request_id))

    async def requests(
        self, *, subjects: Sequence[str] = (), limit: int = 1000
    ) -> list[PrivacyRequest]:
        return await self.read(requests(subjects, limit))

    async def forget_export_paths(self, request_ids: Sequence[str]) -> None:
        if request_ids:
            await self.transact(partial(forget_export_paths, request_ids))

    async def erase(self, plan: ErasurePlan) -> ErasureCounts:
        return await self.transact(partial(erase, plan))

    async def erasure_marker(self) -> int:
        return await self.read(erasure_marker())
