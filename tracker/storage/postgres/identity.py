"""The change feed in PostgreSQL, for ``legal.py`` until it runs as a script too
(``tracker.storage.tables.changes`` is the shared one)."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from tracker.storage.postgres.database import Lock, lock
from tracker.storage.postgres.rows import to_json


async def record_change(
    db: asyncpg.Connection, lead_id: str, kind: str, at: int, data: dict[str, Any]
) -> None:
    """The change-feed row and one outbox row per subscribed webhook, in the caller's
    transaction. ``data`` must hold ids only: it is rendered into a payload at send time.

    The CHANGES lock, held to commit, makes ``seq`` order commit order. Callers take
    every row lock they need before this, so its holder never waits on another."""
    await lock(db, Lock.CHANGES)
    await db.execute("INSERT INTO changes (lead_id, kind, at) VALUES ($1, $2, $3)",
                     lead_id, kind, at)  # fmt: skip
    event_type = f"lead.{kind}"
    for webhook_id, events in await db.fetch(
        "SELECT id, events FROM webhooks WHERE disabled_at IS NULL"
    ):
        if f'"{event_type}"' in events:
            await db.execute(
                "INSERT INTO outbox (id, webhook_id, type, lead_id, data, created_at,"
                " next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                secrets.token_hex(16), webhook_id, event_type, lead_id, to_json(data), at, at,
            )  # fmt: skip
