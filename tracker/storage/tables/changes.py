"""The change feed and the webhook outbox, written in the transaction of each change,
and the merge chain every lead change follows to the lead that stands for a person.

Every change to a lead writes its change-feed row and its outbox rows in the same
transaction, so a sync client or a webhook receiver can never miss one or see one that
did not happen. The CHANGES lock (PostgreSQL), held to commit, makes ``seq`` order
commit order; callers take every row lock they need before it, so its holder never
waits on another.
"""

from __future__ import annotations

import secrets
from typing import Any

from tracker.errors import Conflict
from tracker.storage.records import Webhook
from tracker.storage.rows import WEBHOOK_COLUMNS, to_json, webhook_from_row
from tracker.storage.script import Lock, LockName, Script, row, rows, run

MAX_MERGE_DEPTH = 64


def record_change(lead_id: str, kind: str, at: int, data: dict[str, Any]) -> Script[None]:
    """The change-feed row and one outbox row per subscribed webhook. ``data`` must hold
    ids only: it is rendered into a payload at send time."""
    yield Lock(LockName.CHANGES)
    yield run("INSERT INTO changes (lead_id, kind, at) VALUES (?, ?, ?)", lead_id, kind, at)
    event_type = f"lead.{kind}"
    for hook in (yield from active_webhooks()):
        if hook.subscribes_to(event_type):
            yield run(
                "INSERT INTO outbox (id, webhook_id, type, lead_id, data, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                secrets.token_hex(16), hook.id, event_type, lead_id, to_json(data), at, at,
            )  # fmt: skip


def active_webhooks() -> Script[list[Webhook]]:
    found = yield rows(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE disabled_at IS NULL")
    return [webhook_from_row(r) for r in found]


def resolve(lead_id: str) -> Script[str]:
    """Follow ``merged_into`` to the lead that stands for this person now."""
    current = lead_id
    for _ in range(MAX_MERGE_DEPTH):
        found = yield row("SELECT merged_into FROM leads WHERE id = ?", current)
        if found is None or found[0] is None:
            return current
        current = found[0]
    raise Conflict("merge chain too deep")
