"""API keys, webhooks and the webhook outbox.

Each write is one statement in its own short transaction; the outbox rows themselves are
written by ``changes.record_change``, in the transaction of the change they announce.
"""

from __future__ import annotations

from functools import partial

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
from tracker.storage.script import Script, count, row, rows, run
from tracker.storage.tables import Tables

_MAX_ERROR = 300
"""Characters of a delivery error kept on its outbox row."""


def add_api_key(key: ApiKey) -> Script[None]:
    yield run(
        f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)",
        key.id, key.name, to_json(list(key.scopes)), key.secret_hash, key.created_at,
        None if key.sites is None else to_json(list(key.sites)),
    )  # fmt: skip


def api_key(key_id: str) -> Script[ApiKey | None]:
    found = yield row(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?", key_id)
    return None if found is None else api_key_from_row(found)


def api_keys() -> Script[list[ApiKey]]:
    found = yield rows(f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at")
    return [api_key_from_row(r) for r in found]


def touch_api_key(key_id: str, at: int) -> Script[None]:
    yield run("UPDATE api_keys SET last_used_at = ? WHERE id = ?", at, key_id)


def revoke_api_key(key_id: str, at: int) -> Script[bool]:
    changed = yield count(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", at, key_id
    )
    return bool(changed)


def add_webhook(hook: Webhook) -> Script[None]:
    yield run(
        f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
        hook.id, hook.url, to_json(list(hook.events)), hook.secret, hook.created_at,
    )  # fmt: skip


def webhooks() -> Script[list[Webhook]]:
    found = yield rows(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE disabled_at IS NULL ORDER BY created_at"
    )
    return [webhook_from_row(r) for r in found]


def webhook(hook_id: str) -> Script[Webhook | None]:
    found = yield row(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?", hook_id)
    return None if found is None else webhook_from_row(found)


def disable_webhook(hook_id: str, at: int) -> Script[bool]:
    changed = yield count(
        "UPDATE webhooks SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL", at, hook_id
    )
    return bool(changed)


def due_outbox(now: int, limit: int, webhook_id: str | None) -> Script[list[OutboxItem]]:
    # One endpoint's lane, or every endpoint's: the clause is left out rather than
    # written as `? IS NULL OR …`, whose parameter PostgreSQL cannot type.
    of_hook, args = ("", ()) if webhook_id is None else (" AND webhook_id = ?", (webhook_id,))
    found = yield rows(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL"
        f" AND next_attempt_at <= ?{of_hook} ORDER BY created_at, id LIMIT ?",
        now, *args, limit,
    )  # fmt: skip
    return [outbox_from_row(r) for r in found]


def outbox_of(lead_ids: list[str]) -> Script[list[OutboxItem]]:
    found = yield rows(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE lead_id IN ? ORDER BY created_at", lead_ids
    )
    return [outbox_from_row(r) for r in found]


def deliveries_of(webhook_id: str, limit: int) -> Script[list[OutboxItem]]:
    found = yield rows(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE webhook_id = ?"
        " ORDER BY created_at DESC, id LIMIT ?",
        webhook_id, limit,
    )  # fmt: skip
    return [outbox_from_row(r) for r in found]


def enqueue(item: OutboxItem) -> Script[None]:
    yield run(
        f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL)",
        item.id, item.webhook_id, item.type, item.lead_id, to_json(item.data),
        item.created_at, item.next_attempt_at,
    )  # fmt: skip


def redeliver(item_id: str, at: int) -> Script[bool]:
    """Due again now, with the same delivery id (receivers that saw it ignore it)."""
    changed = yield count(
        "UPDATE outbox SET delivered_at = NULL, next_attempt_at = ? WHERE id = ?", at, item_id
    )
    return bool(changed)


def mark_delivered(item_id: str, at: int, attempts: int) -> Script[None]:
    yield run(
        "UPDATE outbox SET delivered_at = ?, attempts = ?, last_error = NULL WHERE id = ?",
        at, attempts, item_id,
    )  # fmt: skip


def mark_failed(item_id: str, attempts: int, retry_at: int, error: str) -> Script[None]:
    yield run(
        "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
        attempts, retry_at, error[:_MAX_ERROR], item_id,
    )  # fmt: skip


class AccessTables(Tables):
    """API keys, webhooks and the outbox: mixed into each backend's store."""

    async def add_api_key(self, key: ApiKey) -> None:
        await self.transact(partial(add_api_key, key))

    async def api_key(self, key_id: str) -> ApiKey | None:
        return await self.read(api_key(key_id))

    async def list_api_keys(self) -> list[ApiKey]:
        return await self.read(api_keys())

    async def touch_api_key(self, key_id: str, at: int) -> None:
        await self.transact(partial(touch_api_key, key_id, at))

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        return await self.transact(partial(revoke_api_key, key_id, at))

    async def add_webhook(self, hook: Webhook) -> None:
        await self.transact(partial(add_webhook, hook))

    async def webhooks(self) -> list[Webhook]:
        return await self.read(webhooks())

    async def webhook(self, hook_id: str) -> Webhook | None:
        return await self.read(webhook(hook_id))

    async def disable_webhook(self, hook_id: str, at: int) -> bool:
        return await self.transact(partial(disable_webhook, hook_id, at))

    async def due_outbox(
        self, now: int, *, limit: int, webhook_id: str | None = None
    ) -> list[OutboxItem]:
        return await self.read(due_outbox(now, limit, webhook_id))

    async def outbox_of(self, lead_ids: list[str]) -> list[OutboxItem]:
        return await self.read(outbox_of(lead_ids))

    async def deliveries_of(self, webhook_id: str, *, limit: int) -> list[OutboxItem]:
        """An endpoint's deliveries, newest first."""
        return await self.read(deliveries_of(webhook_id, limit))

    async def enqueue_delivery(self, item: OutboxItem) -> None:
        await self.transact(partial(enqueue, item))

    async def redeliver(self, item_id: str, at: int) -> bool:
        return await self.transact(partial(redeliver, item_id, at))

    async def mark_delivered(self, item_id: str, at: int, attempts: int) -> None:
        await self.transact(partial(mark_delivered, item_id, at, attempts))

    async def mark_failed(self, item_id: str, *, attempts: int, retry_at: int, error: str) -> None:
        await self.transact(partial(mark_failed, item_id, attempts, retry_at, error))
