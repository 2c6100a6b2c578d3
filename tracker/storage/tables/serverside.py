"""Server-side ingestion (``tracker.segment``): sites' write keys and seen message ids.

A write key is kept as its SHA-256 only (one per site; rotating replaces it). A
message's id is claimed inside the group-commit transaction that stores its event
(``events.write_batch``), so the event and the claim are durable together: a message
sent again, in the same batch or any later one, claims nothing and is not stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from tracker.storage.records import Event
from tracker.storage.script import Script, count, rows, run, value
from tracker.storage.tables import Tables

MessageKey = tuple[int, bytes]
"""(site id, BLAKE2b-128 of the sender's messageId)."""
_ROWS_PER_STATEMENT = 300
"""Three parameters a row, under SQLite's oldest limit of 999 parameters."""


def set_write_key(site_id: int, key_hash: bytes, now: int) -> Script[None]:
    yield run(
        "INSERT INTO site_write_keys (site_id, key_hash, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (site_id) DO UPDATE SET key_hash = excluded.key_hash,"
        " created_at = excluded.created_at",
        site_id, key_hash, now,
    )  # fmt: skip


def site_of_write_key(key_hash: bytes) -> Script[int | None]:
    found = yield value("SELECT site_id FROM site_write_keys WHERE key_hash = ?", key_hash)
    return None if found is None else int(found)


def claim_messages(events: Iterable[Event]) -> Script[set[MessageKey]]:
    """Record the events' message ids; return those that were not recorded before."""
    wanted: dict[MessageKey, int] = {}
    for event in events:
        if event.message_id is not None:
            wanted.setdefault((event.site_id, event.message_id), event.at)
    claimed: set[MessageKey] = set()
    items = list(wanted.items())
    for start in range(0, len(items), _ROWS_PER_STATEMENT):
        chunk = items[start : start + _ROWS_PER_STATEMENT]
        args: list[Any] = [part for (site_id, mid), at in chunk for part in (site_id, mid, at)]
        found = yield rows(
            "INSERT INTO seen_messages (site_id, message_id, at) VALUES "
            + ", ".join(["(?, ?, ?)"] * len(chunk))
            + " ON CONFLICT DO NOTHING RETURNING site_id, message_id",
            *args,
        )
        claimed.update((int(r[0]), bytes(r[1])) for r in found)
    return claimed


def first_claims(events: Sequence[Event], claimed: set[MessageKey]) -> list[bool]:
    """Per event: may it be stored? Not when its message id was seen before, nor for a
    second event with the same id in this batch."""
    keep: list[bool] = []
    for event in events:
        if event.message_id is None:
            keep.append(True)
            continue
        key = (event.site_id, event.message_id)
        keep.append(key in claimed)
        claimed.discard(key)
    return keep


def purge_seen_messages(before: int, limit: int) -> Script[int]:
    deleted = yield count(
        "DELETE FROM seen_messages WHERE (site_id, message_id) IN (SELECT site_id, message_id"
        " FROM seen_messages WHERE at < ? LIMIT ?)",
        before, limit,
    )  # fmt: skip
    return int(deleted)


class ServerSideTables(Tables):
    """Write keys and seen message ids: mixed into both stores."""

    async def set_write_key(self, site_id: int, key_hash: bytes, *, now: int) -> None:
        await self.transact(partial(set_write_key, site_id, key_hash, now))

    async def site_of_write_key(self, key_hash: bytes) -> int | None:
        return await self.read(site_of_write_key(key_hash))

    async def purge_seen_messages(self, before: int, *, limit: int) -> int:
        return await self.transact(partial(purge_seen_messages, before, limit))
