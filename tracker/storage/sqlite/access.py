"""API keys, webhooks and the outbox in SQLite."""

from __future__ import annotations

import sqlite3

from tracker.storage.records import ApiKey, OutboxItem, Webhook
from tracker.storage.rows import (
    API_KEY_COLUMNS,
    OUTBOX_COLUMNS,
    WEBHOOK_COLUMNS,
    api_key_from_row,
    outbox_from_row,
    to_json,
    webhook_from_row,
)
from tracker.storage.sqlite.database import SQLiteDatabase


class AccessTables(SQLiteDatabase):
    """Mixed into SQLiteStore."""

    async def add_api_key(self, key: ApiKey) -> None:
        await self._write(lambda db: db.execute(
            f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key.id, key.name, to_json(list(key.scopes)), key.secret_hash, key.created_at,
             None, None),
        ))  # fmt: skip

    async def api_key(self, key_id: str) -> ApiKey | None:
        rows = await self._read(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        return api_key_from_row(rows[0]) if rows else None

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self._read(f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at")
        return [api_key_from_row(r) for r in rows]

    async def touch_api_key(self, key_id: str, at: int) -> None:
        await self._write(lambda db: db.execute(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (at, key_id)))  # fmt: skip

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        def revoke(db: sqlite3.Connection) -> bool:
            return bool(db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, key_id),
            ).rowcount)  # fmt: skip

        return await self._write(revoke)

    async def add_webhook(self, hook: Webhook) -> None:
        await self._write(lambda db: db.execute(
            f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (hook.id, hook.url, to_json(list(hook.events)), hook.secret, hook.created_at, None),
        ))  # fmt: skip

    async def webhooks(self) -> list[Webhook]:
        rows = await self._read(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE disabled_at IS NULL ORDER BY created_at"
        )
        return [webhook_from_row(r) for r in rows]

    async def webhook(self, hook_id: str) -> Webhook | None:
        rows = await self._read(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?", (hook_id,))
        return webhook_from_row(rows[0]) if rows else None

    async def disable_webhook(self, hook_id: str, at: int) -> bool:
        def disable(db: sqlite3.Connection) -> bool:
            return bool(db.execute(
                "UPDATE webhooks SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
                (at, hook_id),
            ).rowcount)  # fmt: skip

        return await self._write(disable)

    async def due_outbox(
        self, now: int, *, limit: int, webhook_id: str | None = None
    ) -> list[OutboxItem]:
        rows = await self._read(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL"
            " AND next_attempt_at <= ? AND (? IS NULL OR webhook_id = ?)"
            " ORDER BY created_at, id LIMIT ?",
            (now, webhook_id, webhook_id, limit),
        )
        return [outbox_from_row(r) for r in rows]

    async def outbox_of(self, lead_ids: list[str]) -> list[OutboxItem]:
        marks = ", ".join("?" * len(lead_ids))
        rows = await self._read(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE lead_id IN ({marks}) ORDER BY created_at",
            lead_ids,
        )
        return [outbox_from_row(r) for r in rows]

    async def mark_delivered(self, item_id: str, at: int, attempts: int) -> None:
        await self._write(lambda db: db.execute(
            "UPDATE outbox SET delivered_at = ?, attempts = ?, last_error = NULL WHERE id = ?",
            (at, attempts, item_id),
        ))  # fmt: skip

    async def mark_failed(self, item_id: str, *, attempts: int, retry_at: int, error: str) -> None:
        await self._write(lambda db: db.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (attempts, retry_at, error[:300], item_id),
        ))  # fmt: skip
