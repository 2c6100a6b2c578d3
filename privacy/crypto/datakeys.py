"""Data keys (DEKs): one per lead, stored only wrapped by a KEK in the key store, kept
apart from the data; fetched through a bounded LRU cache; destroyed to crypto-shred."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from privacy.crypto.keyfile import KeyringSource
from privacy.crypto.keyring import KeyConfigError, Keyring
from privacy.crypto.primitives import (
    InvalidCiphertext,
    field_context,
    is_key_id,
    new_key,
    new_key_id,
    open_key,
    seal,
    seal_key,
    unseal,
)
from tracker.errors import Conflict
from tracker.storage.keystore import KeyStore, NotCurrentKek, WrappedKey


@dataclass(frozen=True, slots=True)
class DataKey:
    """One lead's data key (DEK); its repr never shows the key."""

    id: str
    key: bytes = field(repr=False)


def wrap_key(
    keyring: Keyring, dek: DataKey, *, created_at: int, kek_id: str | None = None
) -> WrappedKey:
    """``dek`` sealed by the primary KEK (or ``kek_id``), bound to its own id (no
    swapping rows)."""
    kek_id = kek_id or keyring.primary
    if kek_id not in keyring.keks:
        raise KeyConfigError(f"KEK {kek_id} is not in the key file")
    wrapped = seal_key(keyring.keks[kek_id], kek_id, dek.id, dek.key)
    return WrappedKey(id=dek.id, kek_id=kek_id, wrapped=wrapped, created_at=created_at)


def unwrap_key(keyring: Keyring, record: WrappedKey) -> DataKey:
    """The DEK in ``record``; InvalidCiphertext if its KEK is unknown or it is corrupt."""
    kek = keyring.keks.get(record.kek_id)
    if kek is None:
        raise InvalidCiphertext
    return DataKey(record.id, open_key(kek, record.kek_id, record.id, record.wrapped))


def seal_field(dk: DataKey, table: str, column: str, row_id: str, value: str) -> bytes:
    return seal(dk.key, dk.id, value.encode(), field_context(table, column, row_id))


def open_field(dk: DataKey, table: str, column: str, row_id: str, blob: bytes) -> str:
    plaintext = unseal(dk.key, dk.id, blob, field_context(table, column, row_id))
    try:
        return plaintext.decode()
    except UnicodeDecodeError:
        raise InvalidCiphertext from None


class DataKeys:
    """Create, fetch (through a bounded LRU cache) and destroy data keys."""

    def __init__(
        self,
        source: KeyringSource,
        keystore: KeyStore,
        *,
        cache_size: int = 10_000,
        now: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_key_id,
    ) -> None:
        self.source = source
        self.keystore = keystore
        self.cache_size = cache_size
        self._now = now
        self._new_id = new_id
        self._cache: OrderedDict[str, DataKey] = OrderedDict()
        self._current: str | None = None  # the key store's current KEK, as last read
        self._destroyed = 0  # bumped by destroy(): a get that overlapped one caches nothing

    @property
    def cached(self) -> int:
        return len(self._cache)

    async def create(self) -> DataKey:
        """A new data key, wrapped by the key store's current KEK: the key file's primary
        may lag a rotation by RELOAD_EVERY seconds, and a key wrapped by a KEK that is
        then retired would be lost (the key store refuses it: we re-read and retry)."""
        self.source.maybe_reload(self._now())
        for _ in range(5):  # 64-bit random ids: a conflict is all but impossible
            dek = DataKey(self._new_id(), new_key())
            kek_id = await self._current_kek()
            created_at = int(self._now() * 1000)
            record = wrap_key(self.source.keyring, dek, created_at=created_at, kek_id=kek_id)
            try:
                await self.keystore.put(record)
            except Conflict:
                continue
            except NotCurrentKek:
                self._current = None  # rotated meanwhile
                continue
            self._remember(dek)
            return dek
        raise Conflict("could not store a new data key; try again")

    async def _current_kek(self) -> str:
        if self._current is None:
            state = await self.keystore.keyring_state()
            self._current = state.primary_kek or self.source.keyring.primary
        if self._current not in self.source.keyring.keks:
            self.source.maybe_reload(self._now(), force=True)  # the rotation's new KEK
        if self._current not in self.source.keyring.keks:
            raise KeyConfigError(
                f"the key store's current KEK {self._current} is not in the master key"
                " (ASHIATO_MASTER_KEY_FILE): use the key file `ashiato keys rotate` wrote"
            )
        return self._current

    async def get(self, key_id: str) -> DataKey:
        """The key, or InvalidCiphertext if it is unknown, destroyed or corrupt."""
        dek = self._cache.get(key_id)
        if dek is not None:
            self._cache.move_to_end(key_id)
            return dek
        destroyed = self._destroyed
        record = await self.keystore.get(key_id) if is_key_id(key_id) else None
        if record is None:
            raise InvalidCiphertext
        if record.kek_id not in self.source.keyring.keks:
            self.source.maybe_reload(self._now(), force=True)  # rotated meanwhile?
        dek = unwrap_key(self.source.keyring, record)
        if destroyed == self._destroyed:
            self._remember(dek)
        return dek

    async def destroy(self, key_id: str) -> bool:
        """Crypto-shred: delete the key for good; True if it existed."""
        self._destroyed += 1
        self._cache.pop(key_id, None)
        try:
            return await self.keystore.delete(key_id)
        finally:
            self._destroyed += 1
            self._cache.pop(key_id, None)

    def _remember(self, dek: DataKey) -> None:
        self._cache[dek.id] = dek
        self._cache.move_to_end(dek.id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
