"""Row <-> record conversions for the PostgreSQL modules.

The column lists and the conversions are the SQLite backend's (same columns, JSON kept
as text in ``json`` columns, ciphertexts as bytes), so they are imported from there;
what differs is written here: ``$n`` placeholders and real booleans.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracker.storage.records import ConsentReceipt
from tracker.storage.rows import (
    API_KEY_COLUMNS,
    EVENT_COLUMNS,
    LEAD_COLUMNS,
    LINK_COLUMNS,
    MERGE_COLUMNS,
    OUTBOX_COLUMNS,
    SITE_COLUMNS,
    WEBHOOK_COLUMNS,
    api_key_from_row,
    change_from_row,
    event_from_row,
    event_row,
    from_json,
    lead_from_row,
    link_from_row,
    merge_from_row,
    outbox_from_row,
    site_from_row,
    site_settings_json,
    to_json,
    webhook_from_row,
)

__all__ = [
    "API_KEY_COLUMNS", "EVENT_COLUMNS", "EVENT_COLUMN_NAMES", "LEAD_COLUMNS", "LINK_COLUMNS",
    "MERGE_COLUMNS", "OUTBOX_COLUMNS", "RECEIPT_COLUMNS", "SITE_COLUMNS", "WEBHOOK_COLUMNS",
    "api_key_from_row", "change_from_row", "event_from_row", "event_row", "from_json",
    "lead_from_row", "link_from_row", "marks", "merge_from_row", "outbox_from_row",
    "receipt_from_row", "site_from_row", "site_settings_json", "to_json", "webhook_from_row",
]  # fmt: skip

EVENT_COLUMN_NAMES = tuple(c.strip() for c in EVENT_COLUMNS.split(","))
"""For COPY, which takes the columns as a list."""
RECEIPT_COLUMNS = "id, site_id, vid, analytics, marketing, policy_version, source, at"


def marks(count: int, start: int = 1) -> str:
    """``$1, $2, …`` for a VALUES list of ``count`` columns."""
    return ", ".join(f"${n}" for n in range(start, start + count))


def receipt_from_row(row: Sequence[Any]) -> ConsentReceipt:
    return ConsentReceipt(*row)
