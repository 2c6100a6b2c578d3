"""The key store in SQLite: wrapped data keys in their own database file.

It is a separate file from the data on purpose (see ``tracker.storage.keystore``).
``secure_delete`` (set by the base for every connection) zeroes a deleted key's bytes in
the database pages, and truncating the WAL afterwards removes the copy the WAL held, so
a destroyed key leaves no trace in this file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from tracker.errors import Conflict
from tracker.storage.keystore import AuditAnchor, KeyringState, NotCurrentKek, WrappedKey
from tracker.storage.records import LedgerEntry
from tracker.storage.sqlite.database import SQLiteDatabase

_COLUMNS = "id, kek_id, wrapped, created_at"


def _key_from_row(row: Sequence[Any]) -> WrappedKey:
    id_, kek_id, wrapped, created_at = row
    return WrappedKey(id=id_, kek_id=kek_id, wrapped=bytes(wrapped), created_at=created_at)


class SQLiteKeyStore(SQLiteDatabase):
    """``KeyStore`` over one SQLite file."""

    migrations_folder = "keystore"

    async def put(self, key: WrappedKey) -> None:
        row = (key.id, key.kek_id, key.wrapped, key.created_at, key.kek_id)
        try:
            stored = await self._write(
                lambda db: (
                    db.execute(
                        f"INSERT INTO data_keys ({_COLUMNS}) SELECT ?, ?, ?, ? FROM keyring_state"
                        " WHERE id = 1 AND (primary_kek IS NULL OR primary_kek = ?)",
                        row,
                    ).rowcount
                )
            )
        except sqlite3.IntegrityError:
            raise Conflict("a data key with this id already exists") from None
        if not stored:
            raise NotCurrentKek(key.kek_id)

    async def get(self, key_id: str) -> WrappedKey | None:
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM data_keys WHERE id = ?",
            (key_id,),
        )
        return _key_from_row(rows[0]) if rows else None

    async def delete(self, key_id: str) -> bool:
        deleted = await self._write(
            lambda db: db.execute("DELETE FROM data_keys WHERE id = ?", (key_id,)).rowcount
        )
        if deleted:
            # The zeroed page is committed; the WAL may still hold the page as it was.
            await self.truncate_wal()
        return deleted > 0

    async def wrapped_by_other(self, kek_id: str, *, limit: int) -> list[WrappedKey]:
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM data_keys WHERE kek_id != ? ORDER BY id LIMIT ?",
            (kek_id, limit),
        )
        return [_key_from_row(r) for r in rows]

    async def rewrap(self, pairs: Sequence[tuple[WrappedKey, WrappedKey]]) -> int:
        for old, new in pairs:
            if old.id != new.id:
                raise ValueError("rewrap pairs must keep the key id")
        params = [(new.kek_id, new.wrapped, old.id, old.kek_id, old.wrapped) for old, new in pairs]

        def update(db: sqlite3.Connection) -> int:
            # Matching on the old wrapping too: a key deleted (or re-wrapped) meanwhile is
            # left alone, so a concurrent destroy always wins over a rotation.
            cursor = db.executemany(
                "UPDATE data_keys SET kek_id = ?, wrapped = ?"
                " WHERE id = ? AND kek_id = ? AND wrapped = ?",
                params,
            )
            return cursor.rowcount

        return await self._write(update)

    async def count_by_kek(self) -> dict[str, int]:
        rows = await self._read("SELECT kek_id, COUNT(*) FROM data_keys GROUP BY kek_id")
        return {kek_id: int(count) for kek_id, count in rows}

    async def keyring_state(self) -> KeyringState:
        [(primary_kek, fingerprint)] = await self._read(
            "SELECT primary_kek, fingerprint FROM keyring_state WHERE id = 1"
        )
        return KeyringState(primary_kek, None if fingerprint is None else bytes(fingerprint))

    async def claim_keyring(self, primary_kek: str, fingerprint: bytes) -> KeyringState:
        await self._write(
            lambda db: db.execute(
                "UPDATE keyring_state SET primary_kek = COALESCE(primary_kek, ?),"
                " fingerprint = COALESCE(fingerprint, ?) WHERE id = 1",
                (primary_kek, fingerprint),
            )
        )
        return await self.keyring_state()

    async def set_current_kek(self, kek_id: str) -> None:
        # One writer: a put that read the old state has committed before this runs.
        await self._write(
            lambda db: db.execute(
                "UPDATE keyring_state SET primary_kek = ? WHERE id = 1", (kek_id,)
            )
        )

    async def audit_anchor(self) -> AuditAnchor:
        [(seq, mac)] = await self._read("SELECT seq, mac FROM audit_anchor WHERE id = 1")
        return AuditAnchor(int(seq), bytes(mac))

    async def move_audit_anchor(self, old: AuditAnchor, new: AuditAnchor) -> bool:
        moved = await self._write(
            lambda db: (
                db.execute(
                    "UPDATE audit_anchor SET seq = ?, mac = ? WHERE id = 1 AND seq = ? AND mac = ?",
                    (new.seq, new.mac, old.seq, old.mac),
                ).rowcount
            )
        )
        return moved > 0

    async def record_erasure(
        self, request_id: str, lead_ids: Sequence[str], vids: Sequence[str],
        key_ids: Sequence[str], at: int,
    ) -> LedgerEntry:  # fmt: skip
        values = (request_id, _ids(lead_ids), _ids(vids), _ids(key_ids), at)

        def insert(db: sqlite3.Connection) -> int:
            seq = db.execute(
                "INSERT INTO erasure_ledger (request_id, lead_ids, vids, key_ids, at)"
                " VALUES (?, ?, ?, ?, ?)",
                values,
            ).lastrowid
            assert seq is not None
            return seq

        seq = await self._write(insert)
        return LedgerEntry(seq, request_id, tuple(lead_ids), tuple(vids), tuple(key_ids), at)

    async def finish_erasure(self, seq: int, at: int) -> None:
        await self._write(
            lambda db: db.execute("UPDATE erasure_ledger SET done_at = ? WHERE seq = ?", (at, seq))
        )

    async def ledger(self, *, after: int = 0) -> list[LedgerEntry]:
        rows = await self._read(
            "SELECT seq, request_id, lead_ids, vids, key_ids, at, done_at FROM erasure_ledger"
            " WHERE seq > ? ORDER BY seq",
            (after,),
        )
        return [
            LedgerEntry(seq, request_id, _unids(leads), _unids(vids), _unids(keys), at, done)
            for seq, request_id, leads, vids, keys, at, done in rows
        ]


def _ids(values: Sequence[str]) -> str:
    return json.dumps(list(values))


def _unids(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))
