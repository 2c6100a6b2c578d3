"""API keys, webhooks and the outbox in PostgreSQL."""

from __future__ import annotations

from tracker.storage.postgres.database import PostgresDatabase
from tracker.storage.postgres.dialect import count_of
from tracker.storage.postgres.rows import (
    API_KEY_COLUMNS,
    OUTBOX_COLUMNS,
    WEBHOOK_COLUMNS,
    api_key_from_row,
    outbox_from_row,
    to_json,
    webhook_from_row,
)
from tracker.storage.records import ApiKey, OutboxItem, Webhook


class AccessTables(PostgresDatabase):
    """Mixed into PostgresStore."""

    async def add_api_key(self, key: ApiKey) -> None:
        await self._execute(
            f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
            key.id, key.name, to_json(list(key.scopes)), key.secret_hash, key.created_at,
        )  # fmt: skip

    async def api_key(self, key_id: str) -> ApiKey | None:
        rows = await self._read(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        return api_key_from_row(rows[0]) if rows else None

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self._read(f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at")
        return [api_key_from_row(r) for r in rows]

    async def touch_api_key(self, key_id: str, at: int) -> None:
        await self._execute("UPDATE api_keys SET last_used_at = $1 WHERE id = $2", at, key_id)

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        status = await self._execute(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", at, key_id
        )
        return count_of(status) > 0

    async def add_webhook(self, hook: Webhook) -> None:
        await self._execute(
            f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)",
            hook.id, hook.url, to_json(list(hook.events)), hook.secret, hook.created_at,
        )  # fmt: skip

    async def webhooks(self) -> list[Webhook]:
        rows = await self._read(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE disabled_at IS NULL ORDER BY created_at"
        )
        return [webhook_from_row(r) for r in rows]

    async def webhook(self, hook_id: str) -> Webhook | None:
        rows = await self._read(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1", hook_id)
        return webhook_from_row(rows[0]) if rows else None

    async def disable_webhook(self, hook_id: str, at: int) -> bool:
        status = await self._execute(
            "UPDATE webhooks SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
            at, hook_id,
        )  # fmt: skip
        return count_of(status) > 0

    async def due_outbox(
        self, now: int, *, limit: int, webhook_id: str | None = None
    ) -> list[OutboxItem]:
        rows = await self._read(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL"
            " AND next_attempt_at <= $1 AND ($3::text IS NULL OR webhook_id = $3)"
            " ORDER BY created_at, id LIMIT $2",
            now, limit, webhook_id,
        )  # fmt: skip
        return [outbox_from_row(r) for r in rows]

    async def outbox_of(self, lead_ids: list[str]) -> list[OutboxItem]:
        rows = await self._read(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE lead_id = ANY($1::text[])"
            " ORDER BY created_at",
            lead_ids,
        )
        return [outbox_from_row(r) for r in rows]

    async def mark_delivered(self, item_id: str, at: int, attempts: int) -> None:
        await self._execute(
            "UPDATE outbox SET delivered_at = $1, attempts = $2, last_error = NULL WHERE id = $3",
            at, attempts, item_id,
        )  # fmt: skip

    async def mark_failed(self, item_id: str, *, attempts: int, retry_at: int, error: str) -> None:
        await self._execute(
            "UPDATE outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4",
            attempts, retry_at, error[:300], item_id,
        )  # fmt: skip
