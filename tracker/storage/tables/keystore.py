"""The key store's transactions, written once for both databases.

What the key store holds and why it is kept apart from the data: see
``tracker.storage.keystore``. A backend's key store is ``KeyStoreTables`` over its
database class, pointed at its own migrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from tracker.errors import Conflict
from tracker.storage.keystore import AuditAnchor, KeyringState, NotCurrentKek, WrappedKey
from tracker.storage.records import LedgerEntry
from tracker.storage.rows import text_array
from tracker.storage.script import Script, TextArray, count, row, rows, run, value
from tracker.storage.tables import Tables

KEY_COLUMNS = "id, kek_id, wrapped, created_at"
LEDGER_COLUMNS = "seq, request_id, lead_ids, vids, key_ids, at, done_at"


def key_from_row(r: Sequence[Any]) -> WrappedKey:
    id_, kek_id, wrapped, created_at = r
    return WrappedKey(id=id_, kek_id=kek_id, wrapped=bytes(wrapped), created_at=created_at)


def put(key: WrappedKey) -> Script[None]:
    # FOR SHARE (PostgreSQL), held to commit: a rotation's set_current_kek waits for
    # this insert to commit, and a put that waited for it re-reads the row, so no key
    # lands under a stale KEK after the rotation has looked for the keys it must re-wrap.
    current = yield row(
        "SELECT id FROM keyring_state WHERE id = 1 AND (primary_kek IS NULL"
        " OR primary_kek = ?) FOR SHARE", key.kek_id,
    )  # fmt: skip
    if current is None:
        raise NotCurrentKek(key.kek_id)
    inserted = yield count(
        f"INSERT INTO data_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        key.id, key.kek_id, key.wrapped, key.created_at,
    )  # fmt: skip
    if not inserted:
        raise Conflict("a data key with this id already exists")


def get(key_id: str) -> Script[WrappedKey | None]:
    found = yield row(f"SELECT {KEY_COLUMNS} FROM data_keys WHERE id = ?", key_id)
    return None if found is None else key_from_row(found)


def delete(key_id: str) -> Script[int]:
    return int((yield count("DELETE FROM data_keys WHERE id = ?", key_id)))


def wrapped_by_other(kek_id: str, limit: int) -> Script[list[WrappedKey]]:
    found = yield rows(f"SELECT {KEY_COLUMNS} FROM data_keys WHERE kek_id != ? ORDER BY id"
                       " LIMIT ?", kek_id, limit)  # fmt: skip
    return [key_from_row(r) for r in found]


def rewrap(pairs: Sequence[tuple[WrappedKey, WrappedKey]]) -> Script[int]:
    # Matching on the old wrapping too: a key deleted (or re-wrapped) meanwhile is left
    # alone, so a concurrent destroy always wins over a rotation.
    replaced = 0
    for old, new in pairs:
        replaced += yield count(
            "UPDATE data_keys SET kek_id = ?, wrapped = ? WHERE id = ? AND kek_id = ?"
            " AND wrapped = ?", new.kek_id, new.wrapped, old.id, old.kek_id, old.wrapped,
        )  # fmt: skip
    return replaced


def count_by_kek() -> Script[dict[str, int]]:
    found = yield rows("SELECT kek_id, COUNT(*) FROM data_keys GROUP BY kek_id")
    return {kek_id: int(n) for kek_id, n in found}


def state_from_row(r: Sequence[Any]) -> KeyringState:
    primary_kek, fingerprint = r
    return KeyringState(primary_kek, None if fingerprint is None else bytes(fingerprint))


def keyring_state() -> Script[KeyringState]:
    found = yield row("SELECT primary_kek, fingerprint FROM keyring_state WHERE id = 1")
    return state_from_row(found)


def claim_keyring(primary_kek: str, fingerprint: bytes) -> Script[KeyringState]:
    found = yield row(
        "UPDATE keyring_state SET primary_kek = COALESCE(primary_kek, ?),"
        " fingerprint = COALESCE(fingerprint, ?) WHERE id = 1"
        " RETURNING primary_kek, fingerprint", primary_kek, fingerprint,
    )  # fmt: skip
    return state_from_row(found)


def set_current_kek(kek_id: str) -> Script[None]:
    # PostgreSQL: the row lock waits for every put holding FOR SHARE on the old state;
    # SQLite: one writer, so a put that read the old state has committed.
    yield run("UPDATE keyring_state SET primary_kek = ? WHERE id = 1", kek_id)


def audit_anchor() -> Script[AuditAnchor]:
    seq, mac = yield row("SELECT seq, mac FROM audit_anchor WHERE id = 1")
    return AuditAnchor(int(seq), bytes(mac))


def move_audit_anchor(old: AuditAnchor, new: AuditAnchor) -> Script[bool]:
    moved = yield count(
        "UPDATE audit_anchor SET seq = ?, mac = ? WHERE id = 1 AND seq = ? AND mac = ?",
        new.seq, new.mac, old.seq, old.mac,
    )  # fmt: skip
    return bool(moved)


def record_erasure(entry: LedgerEntry) -> Script[int]:
    seq = yield value(
        "INSERT INTO erasure_ledger (request_id, lead_ids, vids, key_ids, at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING seq", entry.request_id,
        TextArray(entry.lead_ids), TextArray(entry.vids), TextArray(entry.key_ids), entry.at,
    )  # fmt: skip
    return int(seq)


def finish_erasure(seq: int, at: int) -> Script[None]:
    yield run("UPDATE erasure_ledger SET done_at = ? WHERE seq = ?", at, seq)


def ledger(after: int) -> Script[list[LedgerEntry]]:
    found = yield rows(f"SELECT {LEDGER_COLUMNS} FROM erasure_ledger WHERE seq > ?"
                       " ORDER BY seq", after)  # fmt: skip
    return [entry_from_row(r) for r in found]


def entry_from_row(r: Sequence[Any]) -> LedgerEntry:
    seq, request_id, lead_ids, vids, key_ids, at, done_at = r
    return LedgerEntry(seq, request_id, text_array(lead_ids), text_array(vids),
                       text_array(key_ids), at, done_at)  # fmt: skip


class KeyStoreTables(Tables):
    """``KeyStore``'s methods (the protocol in ``tracker.storage.keystore``)."""

    if TYPE_CHECKING:  # supplied by the database class

        async def truncate_wal(self) -> bool: ...

    async def put(self, key: WrappedKey) -> None:
        await self.transact(partial(put, key))

    async def get(self, key_id: str) -> WrappedKey | None:
        return await self.read(get(key_id))

    async def delete(self, key_id: str) -> bool:
        """Destroy a key for good; SQLite's pages are zeroed (``secure_delete``), and its
        WAL, which may still hold the page as it was, is truncated."""
        deleted = await self.transact(partial(delete, key_id))
        if deleted:
            await self.truncate_wal()
        return deleted > 0

    async def wrapped_by_other(self, kek_id: str, *, limit: int) -> list[WrappedKey]:
        return await self.read(wrapped_by_other(kek_id, limit))

    async def rewrap(self, pairs: Sequence[tuple[WrappedKey, WrappedKey]]) -> int:
        if any(old.id != new.id for old, new in pairs):
            raise ValueError("rewrap pairs must keep the key id")
        return await self.transact(partial(rewrap, pairs))

    async def count_by_kek(self) -> dict[str, int]:
        return await self.read(count_by_kek())

    async def keyring_state(self) -> KeyringState:
        return await self.read(keyring_state())

    async def claim_keyring(self, primary_kek: str, fingerprint: bytes) -> KeyringState:
        return await self.transact(partial(claim_keyring, primary_kek, fingerprint))

    async def set_current_kek(self, kek_id: str) -> None:
        await self.transact(partial(set_current_kek, kek_id))

    async def audit_anchor(self) -> AuditAnchor:
        return await self.read(audit_anchor())

    async def move_audit_anchor(self, old: AuditAnchor, new: AuditAnchor) -> bool:
        return await self.transact(partial(move_audit_anchor, old, new))

    async def record_erasure(
        self, request_id: str, lead_ids: Sequence[str], vids: Sequence[str],
        key_ids: Sequence[str], at: int,
    ) -> LedgerEntry:  # fmt: skip
        entry = LedgerEntry(0, request_id, tuple(lead_ids), tuple(vids), tuple(key_ids), at)
        return replace(entry, seq=await self.transact(partial(record_erasure, entry)))

    async def finish_erasure(self, seq: int, at: int) -> None:
        await self.transact(partial(finish_erasure, seq, at))

    async def ledger(self, *, after: int = 0) -> list[LedgerEntry]:
        return await self.read(ledger(after))
