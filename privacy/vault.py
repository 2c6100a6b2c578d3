"""System secrets at rest: site identify secrets and webhook signing secrets.

They are sealed like personal data, under one system data key in the key store, bound
to their table, column and row. Opened secrets are cached in memory per row.
"""

from __future__ import annotations

import asyncio

from privacy.crypto.datakeys import DataKey, DataKeys, open_field, seal_field
from tracker.storage import Store

_SYSTEM = "system"


class Vault:
    def __init__(self, store: Store, keys: DataKeys) -> None:
        self.store = store
        self.keys = keys
        self._lock = asyncio.Lock()
        self._opened: dict[tuple[str, str, str, bytes], bytes] = {}

    async def _key(self) -> DataKey:
        key_id = await self.store.get_system_key(_SYSTEM)
        if key_id is None:
            async with self._lock:
                key_id = await self.store.get_system_key(_SYSTEM)
                if key_id is None:
                    candidate = await self.keys.create()
                    key_id = await self.store.system_key(_SYSTEM, candidate.id)
                    if key_id != candidate.id:  # another process set one first
                        await self.keys.destroy(candidate.id)
        return await self.keys.get(key_id)

    async def seal(self, table: str, column: str, row_id: str, secret: bytes) -> bytes:
        return seal_field(await self._key(), table, column, row_id, secret.hex())

    async def open(self, table: str, column: str, row_id: str, blob: bytes) -> bytes:
        cache_key = (table, column, row_id, blob)
        opened = self._opened.get(cache_key)
        if opened is None:
            opened = bytes.fromhex(open_field(await self._key(), table, column, row_id, blob))
            self._opened[cache_key] = opened
        return opened
