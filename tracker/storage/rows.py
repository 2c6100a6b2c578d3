"""Row <-> record conversions and column lists, shared by both backends.

A row is whatever the driver gives (a tuple from sqlite3, a Record from asyncpg): both
index and unpack alike. JSON is kept as text in both databases (``TEXT`` / ``json``),
ciphertexts as bytes; booleans come back as 0/1 from SQLite and as bools from
PostgreSQL, so conversions that read one say ``bool(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tracker.storage.records import (
    ApiKey,
    Change,
    CmpMapping,
    ConsentReceipt,
    Event,
    LeadRow,
    Link,
    Merge,
    OutboxItem,
    Site,
    SiteSettings,
    Webhook,
)

EVENT_COLUMNS = (
    "site_id, type, vid, sid, at, url, referrer, title, name, props, utm_source, utm_medium,"
    " utm_campaign, utm_term, utm_content, click_ids, browser, browser_version, os,"
    " os_version, device, ip"
)
EVENT_COLUMN_NAMES = tuple(c.strip() for c in EVENT_COLUMNS.split(","))
SHOWN_EVENT_COLUMNS = (
    "id, at, site_id, type, vid, sid, url, referrer, title, name, props, utm_source,"
    " utm_medium, utm_campaign, utm_term, utm_content, click_ids, browser, os, device"
)
"""What a timeline shows of an event (``tracker.api.common.event_item``), read as it is
stored: a timeline reads 10,000 rows, and each column and object per row costs."""
RECEIPT_COLUMNS = "id, site_id, vid, analytics, marketing, policy_version, source, at, signal"
SITE_COLUMNS = "id, key, name, origins, consent_mode, created_at, settings, secret"
LEAD_COLUMNS = (
    "id, email_index, key_id, email, name, company, phone, fields, first_touch, last_touch,"
    " merged_into, created_at, updated_at"
)
LINK_COLUMNS = "id, vid, lead_id, site_id, evidence, began_at, valid_from, ended_at, ip"
MERGE_COLUMNS = "id, into_lead, from_lead, actor, reason, at, undone_at, undone_by, undo_reason"
API_KEY_COLUMNS = "id, name, scopes, secret_hash, created_at, last_used_at, revoked_at, sites"
WEBHOOK_COLUMNS = "id, url, events, secret, created_at, disabled_at"
OUTBOX_COLUMNS = (
    "id, webhook_id, type, lead_id, data, created_at, attempts, next_attempt_at,"
    " delivered_at, last_error"
)


def to_json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def from_json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def campaign_of(touch: dict[str, Any] | None) -> str | None:
    """A touch's UTM campaign, kept beside the touch's JSON for the dashboard's lead counts."""
    found = touch.get("utm_campaign") if touch else None
    return found if isinstance(found, str) else None


def text_array(value: str | Sequence[str]) -> tuple[str, ...]:
    """A ``TextArray`` column as read: JSON text from SQLite, a list from PostgreSQL."""
    return tuple(orjson.loads(value) if isinstance(value, str) else value)


def event_row(e: Event) -> tuple[Any, ...]:
    return (
        e.site_id, e.type, e.vid, e.sid, e.at, e.url, e.referrer, e.title, e.name,
        to_json(e.props), e.utm_source, e.utm_medium, e.utm_campaign, e.utm_term,
        e.utm_content, to_json(e.click_ids), e.browser, e.browser_version, e.os,
        e.os_version, e.device, e.ip,
    )  # fmt: skip


def event_from_row(row: Sequence[Any]) -> Event:
    # Positional, and JSON parsed only where there is some: a timeline reads 10,000 rows,
    # and keyword construction of this 24-field dataclass cost three times as much.
    (id_, site_id, type_, vid, sid, at, url, referrer, title, name, props, source, medium,
     campaign, term, content, click_ids, browser, browser_version, os_, os_version, device,
     ip) = row  # fmt: skip
    return Event(
        site_id, type_, vid, at, sid, url, referrer, title, name,
        None if props is None else orjson.loads(props), source, medium, campaign, term,
        content, None if click_ids is None else orjson.loads(click_ids), browser,
        browser_version, os_, os_version, device, ip, id_,
    )  # fmt: skip


def site_settings_json(settings: SiteSettings) -> str:
    return orjson.dumps({
        "identify": settings.identify, "forms": settings.forms,
        "policy_version": settings.policy_version,
        "retention_days": dict(settings.retention_days),
        "cookie_domain": settings.cookie_domain,
        "cmp": {f: list(getattr(settings.cmp, f)) for f in CmpMapping.__dataclass_fields__},
        "removed_at": settings.removed_at,
    }).decode()  # fmt: skip


def site_from_row(row: Sequence[Any]) -> Site:
    id_, key, name, origins, consent_mode, created_at, settings, secret = row
    raw = orjson.loads(settings or "{}")
    site_settings = SiteSettings(
        identify=raw.get("identify", "any"),
        forms=raw.get("forms", "marked"),
        policy_version=raw.get("policy_version", "unspecified"),
        retention_days=tuple(sorted(raw.get("retention_days", {}).items())),
        cookie_domain=raw.get("cookie_domain", ""),
        cmp=CmpMapping(**{k: tuple(v) for k, v in raw.get("cmp", {}).items()}),
        removed_at=raw.get("removed_at", 0),
    )
    return Site(id_, key, name, tuple(orjson.loads(origins)), consent_mode, created_at,
                site_settings, secret)  # fmt: skip


def lead_from_row(row: Sequence[Any]) -> LeadRow:
    (id_, email_index, key_id, email, name, company, phone, fields, first_touch, last_touch,
     merged_into, created_at, updated_at) = row  # fmt: skip
    return LeadRow(id_, email_index, key_id, email, name, company, phone, fields,
                   from_json(first_touch), from_json(last_touch), merged_into, created_at,
                   updated_at)  # fmt: skip


def link_from_row(row: Sequence[Any]) -> Link:
    return Link(*row)


def merge_from_row(row: Sequence[Any]) -> Merge:
    return Merge(*row)


def change_from_row(row: Sequence[Any]) -> Change:
    return Change(*row)


def api_key_from_row(row: Sequence[Any]) -> ApiKey:
    id_, name, scopes, secret_hash, created_at, last_used_at, revoked_at, sites = row
    return ApiKey(id_, name, tuple(orjson.loads(scopes)), secret_hash, created_at,
                  last_used_at, revoked_at, site_ids(sites))  # fmt: skip


def site_ids(value: str | None) -> tuple[int, ...] | None:
    """A site-limit column as read (a JSON array of site ids; NULL: every site)."""
    return None if value is None else tuple(int(i) for i in orjson.loads(value))


def webhook_from_row(row: Sequence[Any]) -> Webhook:
    id_, url, events, secret, created_at, disabled_at = row
    return Webhook(id_, url, tuple(orjson.loads(events)), secret, created_at, disabled_at)


def outbox_from_row(row: Sequence[Any]) -> OutboxItem:
    (id_, webhook_id, type_, lead_id, data, created_at, attempts, next_attempt_at,
     delivered_at, last_error) = row  # fmt: skip
    return OutboxItem(id_, webhook_id, type_, lead_id, orjson.loads(data), created_at,
                      attempts, next_attempt_at, delivered_at, last_error)  # fmt: skip


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def receipt_from_row(row: Sequence[Any]) -> ConsentReceipt:
    id_, site_id, vid, analytics, marketing, policy_version, source, at, signal = row
    return ConsentReceipt(id_, site_id, vid, _flag(analytics), _flag(marketing),
                          policy_version, source, at, from_json(signal))  # fmt: skip
