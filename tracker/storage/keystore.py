"""The key store: wrapped per-lead data keys, kept apart from the data.

Data keys (DEKs) live in their own database, never in the data database, so that
destroying a lead's key (crypto-shredding) also makes every copy and backup of the data
database unreadable for that lead: the key is not in them. Each key is stored only
wrapped (encrypted) by a key-encryption key (KEK) from the master key file; ``kek_id``
says which, so a rotation can re-wrap them batch by batch and resume after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tracker.errors import ConfigError, StorageError
from tracker.storage.records import LedgerEntry


class NotCurrentKek(StorageError):
    """A data key wrapped by a KEK other than the key store's current one: not stored."""

    def __init__(self, kek_id: str) -> None:
        super().__init__(f"KEK {kek_id} is not the key store's current KEK")
        self.kek_id = kek_id


@dataclass(frozen=True, slots=True)
class WrappedKey:
    id: str
    """16 lowercase hex characters (8 random bytes); also the key id in ciphertexts."""
    kek_id: str
    """The key-encryption key that wraps it."""
    wrapped: bytes
    created_at: int


@dataclass(frozen=True, slots=True)
class KeyringState:
    """What the key store knows of the master key it belongs to (None: not yet set)."""

    primary_kek: str | None
    """New data keys are stored only when wrapped by this KEK."""
    fingerprint: bytes | None
    """Which master key (a MAC under its index and audit keys, never the keys)."""


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """The audit log's head (seq and MAC) as last recorded; seq 0: nothing yet."""

    seq: int
    mac: bytes


class KeyStore(Protocol):
    async def migrate(self) -> list[int]: ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def put(self, key: WrappedKey) -> None:
        """Store a new key; raise ``Conflict`` when the id exists and ``NotCurrentKek``
        when ``key.kek_id`` is not the current KEK (checked in the same statement)."""

    async def get(self, key_id: str) -> WrappedKey | None: ...

    async def delete(self, key_id: str) -> bool:
        """Destroy a key for good (zeroed pages, WAL truncated); True if it existed."""

    async def wrapped_by_other(self, kek_id: str, *, limit: int) -> list[WrappedKey]:
        """Keys not (yet) wrapped by ``kek_id``: the work left in a rotation."""

    async def rewrap(self, pairs: Sequence[tuple[WrappedKey, WrappedKey]]) -> int:
        """Replace each (old, new) in one transaction, only where the row still holds
        ``old`` (a concurrent delete wins); return how many were replaced."""

    async def count_by_kek(self) -> dict[str, int]: ...

    # -- the keyring state and the audit anchor (see migration 0003) ---------------------
    async def keyring_state(self) -> KeyringState: ...

    async def claim_keyring(self, primary_kek: str, fingerprint: bytes) -> KeyringState:
        """Set whichever of the two is not set yet; return the state as it is then."""

    async def set_current_kek(self, kek_id: str) -> None:
        """Make ``kek_id`` current; once this returns, no key under another KEK is put
        (puts that read the old state have committed: a rotation sees their keys)."""

    async def audit_anchor(self) -> AuditAnchor: ...

    async def move_audit_anchor(self, old: AuditAnchor, new: AuditAnchor) -> bool:
        """Set ``new`` only where the anchor is still ``old``; True if it was set."""

    # -- the erasure ledger (kept here, apart from the data, so a restored data backup
    # cannot undo it) ---------------------------------------------------------------------
    async def record_erasure(
        self, request_id: str, lead_ids: Sequence[str], vids: Sequence[str],
        key_ids: Sequence[str], at: int,
    ) -> LedgerEntry: ...  # fmt: skip

    async def finish_erasure(self, seq: int, at: int) -> None: ...

    async def ledger(self, *, after: int = 0) -> list[LedgerEntry]: ...


def open_keystore(url: str) -> KeyStore:
    if url.startswith("sqlite:///"):
        from tracker.storage.sqlite.keystore import SQLiteKeyStore

        return SQLiteKeyStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from tracker.storage.postgres.keystore import PostgresKeyStore

        return PostgresKeyStore(url)
    raise ConfigError(f"unsupported key store URL scheme: {url.split(':', 1)[0]}")
