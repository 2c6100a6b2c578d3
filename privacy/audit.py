"""The audit log: append-only, each row chained to the previous by an HMAC.

The chain key is the audit key of the master key file, never in the database, so
whoever can write the database cannot forge a row: editing, deleting or re-ordering
rows breaks the chain at that point, and ``ashiato audit verify`` names the first
broken link. Rows hold ids, actions and counts, never personal data.

Cutting rows off the *end* breaks no link, so the head (seq and MAC of the last row) is
also anchored in the key store, a database apart from the data. The anchor moves
*after* the row's commit: a crash between the two leaves it behind the log (rows past
it are still chained under the audit key, so they cannot be forged; they are reported as
unanchored and the server anchors them at its next start), never ahead of it, which is
what a truncation looks like. Anchoring first would make every such crash a false
alarm. The anchor only moves forward, and not past a log that no longer holds the
anchored row, so a truncated log that grows again stays detectable.

Recorded: every API read of a lead's personal data, exports, erasures, key operations
and consent administration.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from privacy.crypto.keyfile import KeyringSource
from privacy.crypto.primitives import sign, verify
from tracker.errors import StorageError
from tracker.storage import Store
from tracker.storage.keystore import AuditAnchor, KeyStore
from tracker.storage.records import AuditRow

log = logging.getLogger("ashiato.audit")
_ANCHOR_ATTEMPTS = 20  # compare-and-set against other processes' appends


def canonical(row: AuditRow) -> bytes:
    return orjson.dumps([row.seq, row.at, row.actor, row.action, row.subject, row.detail],
                        option=orjson.OPT_SORT_KEYS)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Chain:
    """``AuditChain`` for the store: HMAC-SHA256(audit key, previous MAC || row)."""

    key: bytes

    def mac(self, previous: bytes, row: AuditRow) -> bytes:
        return sign(self.key, previous + canonical(row))


class AuditLog:
    def __init__(self, store: Store, keyring: KeyringSource, keystore: KeyStore) -> None:
        self.store = store
        self.keyring = keyring
        self.keystore = keystore

    async def record(
        self, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None
    ) -> AuditRow:
        row = AuditRow(0, time.time_ns() // 1_000_000, actor, action, subject, detail or {})
        row = await self.store.append_audit(row, Chain(self.keyring.keyring.audit_key))
        await self.anchor(row)
        return row

    async def rows(self, *, after: int = 0, page: int = 1000) -> list[AuditRow]:
        out = []
        while batch := await self.store.audit_page(after=after, limit=page):
            out.extend(batch)
            after = batch[-1].seq
        return out

    async def verify(self) -> Verdict:
        return check_chain(await self.rows(), self.keyring.keyring.audit_key,
                           await self.keystore.audit_anchor())  # fmt: skip

    async def anchor(self, head: AuditRow) -> bool:
        """Move the key store's anchor forward to ``head`` (a committed row); False when
        the log no longer holds the anchored row (it was cut: keep the evidence)."""
        for _ in range(_ANCHOR_ATTEMPTS):
            anchor = await self.keystore.audit_anchor()
            if anchor.seq >= head.seq:
                return True  # a later row of another request or process is anchored
            if anchor.seq and not await self._holds(anchor):
                log.error("audit log lacks its anchored row %d; run `ashiato audit verify`",
                          anchor.seq)  # fmt: skip
                return False
            if await self.keystore.move_audit_anchor(anchor, AuditAnchor(head.seq, head.mac)):
                return True
        return False  # moved by others every time: they anchored rows after ours

    async def catch_up(self) -> int:
        """At start: anchor rows committed after the anchor (a crash came between);
        return how many there were."""
        anchor = await self.keystore.audit_anchor()
        rows = await self.rows(after=anchor.seq)
        if rows:
            await self.anchor(rows[-1])
        elif anchor.seq and not await self._holds(anchor):
            log.error("audit log ends before its anchored row %d; run `ashiato audit verify`",
                      anchor.seq)  # fmt: skip
        return len(rows)

    async def reanchor(self, actor: str) -> AuditRow:
        """After restoring an older backup of the data: record that rows past the head
        were lost, and anchor that record (the loss stays in the log, chained)."""
        for _ in range(_ANCHOR_ATTEMPTS):
            anchor = await self.keystore.audit_anchor()
            row = await self.store.append_audit(
                AuditRow(0, time.time_ns() // 1_000_000, actor, "audit.reanchor", "audit",
                         {"anchor_was": anchor.seq}),
                Chain(self.keyring.keyring.audit_key),
            )  # fmt: skip
            if await self.keystore.move_audit_anchor(anchor, AuditAnchor(row.seq, row.mac)):
                return row
        raise StorageError("the audit anchor kept moving under other processes; try again")

    async def _holds(self, anchor: AuditAnchor) -> bool:
        rows = await self.store.audit_page(after=anchor.seq - 1, limit=1)
        return bool(rows) and rows[0].seq == anchor.seq and hmac.compare_digest(
            rows[0].mac, anchor.mac)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: int
    broken_at: int | None
    """The seq of the first row that does not follow from the one before; None: intact."""
    reason: str = ""
    unanchored: int = 0
    """Rows past the key store's anchor (a crash between commit and anchoring): chained,
    but a cut of these would go unseen; the server anchors them at its next start."""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def check_chain(rows: list[AuditRow], key: bytes, anchor: AuditAnchor | None = None) -> Verdict:
    """Walk the chain from the start; report the first link that does not hold, then
    whether the log still reaches the key store's ``anchor``."""
    previous, expected_seq = b"", 1
    for row in rows:
        if row.seq != expected_seq:
            return Verdict(len(rows), row.seq, f"row {expected_seq} is missing")
        if not verify(key, previous + canonical(row), row.mac):
            return Verdict(len(rows), row.seq, "row was altered, moved or its predecessor was")
        previous, expected_seq = row.mac, expected_seq + 1
    return _check_anchor(rows, anchor or AuditAnchor(0, b""))


def _check_anchor(rows: list[AuditRow], anchor: AuditAnchor) -> Verdict:
    # rows are 1..n without gaps here: the chain walk checked that.
    n = len(rows)
    if anchor.seq > n:
        return Verdict(n, n + 1, f"rows {n + 1} to {anchor.seq} are missing: the log was cut "
                       "short (or the data restored from an older backup: see "
                       "`ashiato audit reanchor`)")  # fmt: skip
    if anchor.seq and not hmac.compare_digest(rows[anchor.seq - 1].mac, anchor.mac):
        return Verdict(n, anchor.seq, "row is not the one the key store anchored")
    return Verdict(n, None, unanchored=n - anchor.seq)
