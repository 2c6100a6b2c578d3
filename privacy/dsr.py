"""Data-subject requests: access (export) and erasure, tracked and audited.

Erasure order, each step safe to repeat after a crash:
1. an entry in the erasure ledger (in the key store, apart from the data; ids only);
2. one transaction deleting every row of the person from the data store, with the
   change-feed tombstone and the ``lead.erased`` webhook in the same transaction;
3. the lead's data keys destroyed (crypto-shredding: copies and backups of the data
   become unreadable for that lead);
4. the person's earlier exports removed from the export directory;
5. deleted pages were zeroed (``secure_delete``); the WAL is checkpointed and truncated;
6. the ledger entry marked done.
At start (and with ``ashiato privacy reapply``) every ledger entry the data store has not
seen — an interrupted erasure, or a restore of an older backup — is applied again.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import enum
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacy import export as exports
from privacy.audit import AuditLog
from privacy.crypto.datakeys import DataKeys
from privacy.files import write_private
from privacy.personal import PersonalData
from tracker.errors import Conflict, Invalid, NotFound
from tracker.storage import Store
from tracker.storage.keystore import KeyStore
from tracker.storage.records import (
    ErasureCounts,
    ErasurePlan,
    LeadRow,
    LedgerEntry,
    Link,
    PrivacyRequest,
)


class RequestKind(enum.StrEnum):
    """What a data-subject request asks for (``PrivacyRequest.kind``)."""

    EXPORT = "export"
    ERASE = "erase"


class RequestStatus(enum.StrEnum):
    """Where a data-subject request stands (``PrivacyRequest.status``)."""

    RECEIVED = "received"
    COMPLETED = "completed"
    FAILED = "failed"
    """An export not built or not delivered (an interrupted erasure stays received: its
    ledger entry is applied again)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Everything that is one person's, found from an email, lead id or visitor id."""

    ref: str
    """The pseudonymous reference requests are filed under (root lead id or visitor id)."""
    leads: tuple[LeadRow, ...]
    """The lead and every lead merged into it; empty for an anonymous visitor."""
    links: tuple[Link, ...]
    whole_vids: tuple[str, ...]
    """Visitors that are nobody else's (all their data goes on erasure)."""

    @property
    def refs(self) -> list[str]:
        """Every reference an earlier request about this person may be filed under: a
        lead merged in since had its own, and a visitor had its own before it was
        identified (an anonymous export of a browser also holds this person's history)."""
        vids = [*(k.vid for k in self.links), *self.whole_vids]
        return list(dict.fromkeys([self.ref, *(r.id for r in self.leads), *vids]))


Deliver = Callable[[PrivacyRequest, dict[str, Any]], str | None]
"""Hands an export's bundle over (writes it); returns the file written, if any. What it
raises fails the request: an export counts as completed only once delivered."""


def _keep(request: PrivacyRequest, bundle: dict[str, Any]) -> None:
    """The caller delivers the bundle itself (an HTTP answer)."""


def add_month(ms: int) -> int:
    """One calendar month later (31 Jan -> 28/29 Feb), the GDPR deadline."""
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return int(when.replace(year=year, month=month, day=day).timestamp() * 1000)


class DataSubjectRequests:
    def __init__(
        self,
        store: Store,
        keystore: KeyStore,
        keys: DataKeys,
        personal: PersonalData,
        audit: AuditLog,
        *,
        export_dir: Path,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.keystore, self.keys = store, keystore, keys
        self.personal, self.audit = personal, audit
        self.export_dir = export_dir
        self._now = now

    def _ms(self) -> int:
        return int(self._now() * 1000)

    # -- finding the person -------------------------------------------------------------
    async def find(
        self, *, email: str | None = None, lead: str | None = None, visitor: str | None = None
    ) -> Subject:
        if sum(x is not None for x in (email, lead, visitor)) != 1:
            raise Invalid("name exactly one of email, lead or visitor")
        if email is not None:
            row = await self.store.lead_by_index(self.personal.email_index(email))
            lead = row.id if row else None
        elif visitor is not None:
            return await self._visitor_subject(visitor)
        root = await self.store.resolve_lead(lead) if lead else None
        if root is None:
            raise NotFound("no data is held about that subject")
        return await self._lead_subject(root)

    async def _lead_subject(self, root: str) -> Subject:
        family = await self.store.lead_family(root)
        rows = [r for lead_id in family if (r := await self.store.lead(lead_id))]
        links = await self.store.links_of_leads(family)
        whole = []
        for vid in dict.fromkeys(link.vid for link in links):
            if all(k.lead_id in family for k in await self.store.links_of_visitor(vid)):
                whole.append(vid)
        return Subject(root, tuple(rows), tuple(links), tuple(whole))

    async def find_ref(self, ref: str) -> Subject:
        """The person a request is filed under (``PrivacyRequest.subject``)."""
        return await (self.find(lead=ref) if ref.startswith("ld_") else self.find(visitor=ref))

    async def receive(self, kind: RequestKind, subject: Subject, *, actor: str) -> PrivacyRequest:
        """Record a request to act on later (the console's queue); due in a month."""
        request = await self._open(kind, subject)
        await self.audit.record(actor, f"privacy.{kind}.received", subject.ref,
                                {"request": request.id})  # fmt: skip
        return request

    async def _visitor_subject(self, vid: str) -> Subject:
        links = await self.store.links_of_visitor(vid)
        roots = {await self.store.resolve_lead(link.lead_id) for link in links} - {None}
        if len(roots) > 1:
            raise Conflict("this browser was used by several known people: name the lead")
        if roots:
            return await self._lead_subject(str(next(iter(roots))))
        if not (
            await self.store.visitor_events(vid, limit=1)
            or await self.store.consent_receipts_of([vid])
        ):
            raise NotFound("no data is held about that subject")
        return Subject(vid, (), (), (vid,))

    # -- access --------------------------------------------------------------------------
    async def export(
        self,
        subject: Subject,
        *,
        actor: str,
        deliver: Deliver = _keep,
        request: PrivacyRequest | None = None,
        on_sites: Sequence[int] | None = None,
    ) -> tuple[PrivacyRequest, dict[str, Any]]:
        """Build the bundle and ``deliver`` it; the request (a new one, or the received
        ``request``) is marked completed (and the export audited) only after delivery,
        and failed when building or delivery fails. ``on_sites``: a site-limited
        reader's export, of what happened on those sites only."""
        request = request or await self._open(RequestKind.EXPORT, subject)
        try:
            bundle = await exports.bundle(
                self.store, self.personal, subject, request.id, self._ms(), on_sites=on_sites
            )
            path = deliver(request, bundle)
        except Exception as exc:
            await self.store.finish_request(
                request.id,
                status=RequestStatus.FAILED,
                at=self._ms(),
                detail={"error": _cause(exc)},
            )
            raise
        await self.store.finish_request(
            request.id,
            status=RequestStatus.COMPLETED,
            at=self._ms(),
            detail=exports.counts(bundle),
            export_path=path,
        )
        await self.audit.record(actor, "privacy.export", subject.ref, {"request": request.id})
        return request, bundle

    async def export_to_dir(
        self, subject: Subject, *, actor: str, fmt: str = "json"
    ) -> tuple[PrivacyRequest, Path]:
        """Write the export into the export directory (0600); erasure removes it later."""
        self.export_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

        def deliver(request: PrivacyRequest, bundle: dict[str, Any]) -> str:
            path = self.export_dir / f"{request.id}.{fmt}"
            write_private(path, exports.render(bundle, fmt))
            return str(path)

        request, _ = await self.export(subject, actor=actor, deliver=deliver)
        return request, self.export_dir / f"{request.id}.{fmt}"

    # -- erasure -------------------------------------------------------------------------
    async def erase(
        self, subject: Subject, *, actor: str, request: PrivacyRequest | None = None
    ) -> tuple[PrivacyRequest, ErasureCounts]:
        """Erase the person (a new request, or the received ``request``)."""
        request = request or await self._open(RequestKind.ERASE, subject)
        entry = await self.keystore.record_erasure(
            request.id,
            [r.id for r in subject.leads],
            subject.whole_vids,
            [r.key_id for r in subject.leads],
            self._ms(),
        )
        counts = await self._apply(entry, subject.links)
        await self._remove_exports(subject)
        detail = {
            "leads": counts.leads,
            "events": counts.events,
            "links": counts.links,
            "consent_receipts": counts.receipts,
            "merges": counts.merges,
            "webhook_deliveries": counts.outbox,
            "ledger": entry.seq,
        }
        await self.store.finish_request(
            request.id, status=RequestStatus.COMPLETED, at=self._ms(), detail=detail
        )
        await self.audit.record(actor, "privacy.erase", subject.ref, {"request": request.id})
        return request, counts

    async def _apply(self, entry: LedgerEntry, links: tuple[Link, ...]) -> ErasureCounts:
        plan = ErasurePlan(entry.lead_ids, links, entry.vids, entry.seq, self._ms())
        counts = await self.store.erase(plan)
        for key_id in entry.key_ids:
            await self.keys.destroy(key_id)
        await self.store.truncate_wal()
        await self.keystore.finish_erasure(entry.seq, self._ms())
        return counts

    async def reapply(self) -> int:
        """Apply again every ledger entry this data store has not seen; return how many."""
        marker = await self.store.erasure_marker()
        redo = [e for e in await self.keystore.ledger() if e.seq > marker or e.done_at is None]
        for entry in redo:
            links = tuple(await self.store.links_of_leads(entry.lead_ids))
            await self._apply(entry, links)
        if redo:
            await self.audit.record(
                "system", "privacy.reapply", "ledger", {"entries": [e.seq for e in redo]}
            )
        return len(redo)

    async def _remove_exports(self, subject: Subject) -> None:
        earlier = await self.store.requests(subjects=subject.refs)
        for req in earlier:
            if req.export_path:
                with contextlib.suppress(FileNotFoundError):
                    Path(req.export_path).unlink()
        await self.store.forget_export_paths([r.id for r in earlier if r.export_path])

    async def _open(self, kind: RequestKind, subject: Subject) -> PrivacyRequest:
        now = self._ms()
        request = PrivacyRequest(
            "pr_" + secrets.token_hex(12),
            kind,
            RequestStatus.RECEIVED,
            subject.ref,
            now,
            add_month(now),
        )
        await self.store.add_request(request)
        return request


def _cause(exc: Exception) -> str:
    """What went wrong, for the request's record: the kind only, no path, no data."""
    return f"export not delivered: {exc.__class__.__name__}"
