"""The change feed in SQLite, for ``legal.py`` until it runs as a script too
(``tracker.storage.tables.changes`` is the shared one)."""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from tracker.storage.rows import to_json


def record_change(
    db: sqlite3.Connection, lead_id: str, kind: str, at: int, data: dict[str, Any]
) -> None:
    """The change-feed row and one outbox row per subscribed webhook, in the caller's
    transaction. ``data`` must hold ids only: it is rendered into a payload at send time."""
    db.execute("INSERT INTO changes (lead_id, kind, at) VALUES (?, ?, ?)", (lead_id, kind, at))
    event_type = f"lead.{kind}"
    for webhook_id, events in db.execute(
        "SELECT id, events FROM webhooks WHERE disabled_at IS NULL"
    ).fetchall():
        if f'"{event_type}"' in events:
            db.execute(
                "INSERT INTO outbox (id, webhook_id, type, lead_id, data, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (secrets.token_hex(16), webhook_id, event_type, lead_id, to_json(data), at, at),
            )
