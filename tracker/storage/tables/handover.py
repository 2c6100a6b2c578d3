"""What ``lead.hot`` carries besides the score: the lead's last pages and consent, and
its outbox rows (written in the transaction that decided the crossing)."""

from __future__ import annotations

import secrets
from typing import Any

from tracker.storage.rows import LINK_COLUMNS, link_from_row, to_json
from tracker.storage.script import Script, rows, run, value
from tracker.storage.tables.changes import active_webhooks
from tracker.storage.tables.identity import NO_END, lead_family

LAST_PAGES = 10


def activity(root: str, site_id: int) -> Script[dict[str, Any]]:
    """The site's key, the last pages the lead's visitors viewed on it, and their consent
    there now."""
    site_key = yield value("SELECT key FROM sites WHERE id = ?", site_id)
    family = yield from lead_family(root)
    found = yield rows(f"SELECT {LINK_COLUMNS} FROM links WHERE lead_id IN ?", family)
    links = [link_from_row(r) for r in found]
    pages: list[tuple[int, str | None, str | None]] = []
    for link in links:
        pages += yield rows(
            "SELECT at, url, title FROM events WHERE vid = ? AND site_id = ? AND type = ?"
            " AND at >= ? AND at < ? ORDER BY at DESC LIMIT ?", link.vid, site_id, "pageview",
            link.valid_from, link.ended_at or NO_END, LAST_PAGES,
        )  # fmt: skip
    pages.sort(key=lambda p: -p[0])
    states = yield rows(
        "SELECT analytics, marketing, at FROM consent_state WHERE site_id = ? AND vid IN ?"
        " ORDER BY at DESC", site_id, [k.vid for k in links] or [""],
    )  # fmt: skip
    consent = None
    if states:
        analytics, marketing, at = states[0]
        consent = {"analytics": bool(analytics), "marketing": bool(marketing), "at": int(at)}
    last = [{"at": int(a), "url": u, "title": t} for a, u, t in pages[:LAST_PAGES]]
    return {"site": site_key, "last_pages": last, "consent": consent}


def enqueue(lead_id: str, event_type: str, data: dict[str, Any], now: int) -> Script[None]:
    """One outbox row per webhook subscribed to ``event_type`` (no change-feed row: a
    score is not a change of the lead's record)."""
    for hook in (yield from active_webhooks()):
        if hook.subscribes_to(event_type):
            yield run("INSERT INTO outbox (id, webhook_id, type, lead_id, data, created_at,"
                      " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)", secrets.token_hex(16),
                      hook.id, event_type, lead_id, to_json(data), now, now)  # fmt: skip
