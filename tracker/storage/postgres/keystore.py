"""The key store in PostgreSQL: wrapped data keys in their own database.

It is a separate database from the data on purpose (see ``tracker.storage.keystore``):
another database on the same server at least (``…/ashiato_keys``), better another
server, backed up on its own schedule. A deleted key's row stays in the table file as
a dead tuple until VACUUM (autovacuum is set to visit this table after any change) and
in the WAL until it is recycled; it is wrapped by a KEK there, so rotating and retiring
the KEK (``ashiato keys rotate``, ``keys retire``) makes every such remnant, and every
older backup of this database, unreadable for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from tracker.errors import Conflict
from tracker.storage.keystore import AuditAnchor, KeyringState, NotCurrentKek, WrappedKey
from tracker.storage.postgres.database import PostgresDatabase
from tracker.storage.postgres.dialect import count_of
from tracker.storage.records import LedgerEntry

_COLUMNS = "id, kek_id, wrapped, created_at"


def _key_from_row(row: Sequence[Any]) -> WrappedKey:
    id_, kek_id, wrapped, created_at = row
    return WrappedKey(id=id_, kek_id=kek_id, wrapped=bytes(wrapped), created_at=created_at)


class PostgresKeyStore(PostgresDatabase):
    """``KeyStore`` over one PostgreSQL database."""

    migrations_folder = "postgres_keystore"

    async def put(self, key: WrappedKey) -> None:
        # FOR SHARE: a rotation's set_current_kek waits for this insert to commit, and an
        # insert that waited for it re-reads the row, so no key lands under a stale KEK
        # after the rotation has looked for the keys it must re-wrap.
        try:
            status = await self._execute(
                f"INSERT INTO data_keys ({_COLUMNS}) SELECT $1, $2, $3, $4 FROM keyring_state"
                " WHERE id = 1 AND (primary_kek IS NULL OR primary_kek = $2) FOR SHARE",
                key.id, key.kek_id, key.wrapped, key.created_at,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise Conflict("a data key with this id already exists") from None
        if not count_of(status):
            raise NotCurrentKek(key.kek_id)

    async def get(self, key_id: str) -> WrappedKey | None:
        rows = await self._read(f"SELECT {_COLUMNS} FROM data_keys WHERE id = $1", key_id)
        return _key_from_row(rows[0]) if rows else None

    async def delete(self, key_id: str) -> bool:
        return count_of(await self._execute("DELETE FROM data_keys WHERE id = $1", key_id)) > 0

    async def wrapped_by_other(self, kek_id: str, *, limit: int) -> list[WrappedKey]:
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM data_keys WHERE kek_id != $1 ORDER BY id LIMIT $2",
            kek_id, limit,
        )  # fmt: skip
        return [_key_from_row(r) for r in rows]

    async def rewrap(self, pairs: Sequence[tuple[WrappedKey, WrappedKey]]) -> int:
        for old, new in pairs:
            if old.id != new.id:
                raise ValueError("rewrap pairs must keep the key id")
        if not pairs:
            return 0
        # Matching on the old wrapping too: a key deleted (or re-wrapped) meanwhile is left
        # alone, so a concurrent destroy always wins over a rotation. One statement for
        # the batch, so its count is exact.
        status = await self._execute(
            "UPDATE data_keys d SET kek_id = n.kek_id, wrapped = n.wrapped"
            " FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bytea[])"
            " AS n(id, kek_id, wrapped, old_kek_id, old_wrapped)"
            " WHERE d.id = n.id AND d.kek_id = n.old_kek_id AND d.wrapped = n.old_wrapped",
            [old.id for old, _ in pairs], [new.kek_id for _, new in pairs],
            [new.wrapped for _, new in pairs], [old.kek_id for old, _ in pairs],
            [old.wrapped for old, _ in pairs],
        )  # fmt: skip
        return count_of(status)

    async def count_by_kek(self) -> dict[str, int]:
        rows = await self._read("SELECT kek_id, COUNT(*) FROM data_keys GROUP BY kek_id")
        return {kek_id: int(count) for kek_id, count in rows}

    async def keyring_state(self) -> KeyringState:
        [(primary_kek, fingerprint)] = await self._read(
            "SELECT primary_kek, fingerprint FROM keyring_state WHERE id = 1"
        )
        return KeyringState(primary_kek, None if fingerprint is None else bytes(fingerprint))

    async def claim_keyring(self, primary_kek: str, fingerprint: bytes) -> KeyringState:
        await self._execute(
            "UPDATE keyring_state SET primary_kek = COALESCE(primary_kek, $1),"
            " fingerprint = COALESCE(fingerprint, $2) WHERE id = 1",
            primary_kek, fingerprint,
        )  # fmt: skip
        return await self.keyring_state()

    async def set_current_kek(self, kek_id: str) -> None:
        # The row lock waits for every put holding FOR SHARE on the old state.
        await self._execute("UPDATE keyring_state SET primary_kek = $1 WHERE id = 1", kek_id)

    async def audit_anchor(self) -> AuditAnchor:
        [(seq, mac)] = await self._read("SELECT seq, mac FROM audit_anchor WHERE id = 1")
        return AuditAnchor(int(seq), bytes(mac))

    async def move_audit_anchor(self, old: AuditAnchor, new: AuditAnchor) -> bool:
        status = await self._execute(
            "UPDATE audit_anchor SET seq = $1, mac = $2 WHERE id = 1 AND seq = $3 AND mac = $4",
            new.seq, new.mac, old.seq, old.mac,
        )  # fmt: skip
        return count_of(status) > 0

    async def record_erasure(
        self, request_id: str, lead_ids: Sequence[str], vids: Sequence[str],
        key_ids: Sequence[str], at: int,
    ) -> LedgerEntry:  # fmt: skip
        seq = await self._read_value(
            "INSERT INTO erasure_ledger (request_id, lead_ids, vids, key_ids, at)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            request_id, list(lead_ids), list(vids), list(key_ids), at,
        )  # fmt: skip
        return LedgerEntry(int(seq), request_id, tuple(lead_ids), tuple(vids), tuple(key_ids), at)

    async def finish_erasure(self, seq: int, at: int) -> None:
        await self._execute("UPDATE erasure_ledger SET done_at = $1 WHERE seq = $2", at, seq)

    async def ledger(self, *, after: int = 0) -> list[LedgerEntry]:
        rows = await self._read(
            "SELECT seq, request_id, lead_ids, vids, key_ids, at, done_at FROM erasure_ledger"
            " WHERE seq > $1 ORDER BY seq",
            after,
        )
        return [
            LedgerEntry(seq, request_id, tuple(leads), tuple(vids), tuple(keys), at, done)
            for seq, request_id, leads, vids, keys, at, done in rows
        ]
