"""The audit log: append-only, each row chained to the previous by an HMAC.

The chain key is the audit key of the master key file, never in the database, so
whoever can write the database cannot forge a row: editing, deleting or re-ordering
rows breaks the chain at that point, and ``ashiato audit verify`` names the first
broken link. Rows hold ids, actions and counts, never personal data.

Recorded: every API read of a lead's personal data, exports, erasures, key operations
and consent administration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from privacy.crypto import KeyringSource, sign, verify
from tracker.storage import Store
from tracker.storage.records import AuditRow


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
    def __init__(self, store: Store, keyring: KeyringSource) -> None:
        self.store = store
        self.keyring = keyring

    async def record(
        self, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None
    ) -> AuditRow:
        row = AuditRow(0, time.time_ns() // 1_000_000, actor, action, subject, detail or {})
        return await self.store.append_audit(row, Chain(self.keyring.keyring.audit_key))

    async def rows(self, *, page: int = 1000) -> list[AuditRow]:
        out, after = [], 0
        while batch := await self.store.audit_page(after=after, limit=page):
            out.extend(batch)
            after = batch[-1].seq
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: int
    broken_at: int | None
    """The seq of the first row that does not follow from the one before; None: intact."""
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def check_chain(rows: list[AuditRow], key: bytes) -> Verdict:
    """Walk the chain from the start; report the first link that does not hold."""
    previous, expected_seq = b"", 1
    for row in rows:
        if row.seq != expected_seq:
            return Verdict(len(rows), row.seq, f"row {expected_seq} is missing")
        if not verify(key, previous + canonical(row), row.mac):
            return Verdict(len(rows), row.seq, "row was altered, moved or its predecessor was")
        previous, expected_seq = row.mac, expected_seq + 1
    return Verdict(len(rows), None)
