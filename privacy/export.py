"""The access bundle: everything held about one person, decrypted, in one document.

JSON (the complete bundle) or CSV (one row per item, every section; cells that a
spreadsheet would run as a formula are prefixed with ``'``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from privacy.crypto.primitives import InvalidCiphertext
from privacy.personal import PersonalData, link_ref
from tracker.storage import Store
from tracker.storage.records import Event, Link, ScoreEntry, Submission

if TYPE_CHECKING:
    from privacy.dsr import Subject

FORMAT = "ashiato-export/1"
SECTIONS = (
    "leads",
    "visitors",
    "events",
    "form_submissions",
    "consent_receipts",
    "links",
    "merges",
    "score_ledger",
    "webhook_deliveries",
    "privacy_requests",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def bundle(
    store: Store, personal: PersonalData, subject: Subject, request_id: str, now: int, *,
    on_sites: Sequence[int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The bundle; with ``on_sites`` (a site-limited reader), only what happened on those
    sites, and no webhook deliveries (every site's endpoints)."""
    lead_ids = [r.id for r in subject.leads]
    vids = list(dict.fromkeys([*(k.vid for k in subject.links), *subject.whole_vids]))
    if subject.leads:
        events = await store.link_events(subject.links, limit=10**9, sites=on_sites)
        extra = [v for v in subject.whole_vids if v not in {k.vid for k in subject.links}]
        for vid in extra:
            events += await store.visitor_events(vid, limit=10**9, sites=on_sites)
    else:
        events = await store.visitor_events(subject.ref, limit=10**9, sites=on_sites)
    receipts = await store.consent_receipts_of(vids)
    links = list(subject.links)
    if on_sites is not None:
        allowed = set(on_sites)
        receipts = [r for r in receipts if r.site_id in allowed]
        links = [k for k in links if k.site_id in allowed]
        held = {e.vid for e in events} | {r.vid for r in receipts} | {k.vid for k in links}
        vids = [v for v in vids if v in held]
    sites = {s.id: s.key for s in await store.list_sites()}
    deliveries = await store.outbox_of(lead_ids) if lead_ids and on_sites is None else []
    return {
        "format": FORMAT,
        "generated_at": now,
        "request": request_id,
        "subject": subject.ref,
        "leads": [await _lead(personal, row) for row in subject.leads],
        "visitors": vids,
        "events": [_event(e, sites) for e in events],
        "form_submissions": await _form_submissions(
            store, personal, subject, events, sites, on_sites=on_sites
        ),
        "consent_receipts": [
            {
                "consent_id": r.id,
                "visitor": r.vid,
                "site": sites.get(r.site_id),
                "analytics": r.analytics,
                "marketing": r.marketing,
                "policy_version": r.policy_version,
                "source": r.source,
                "signal": r.signal,
                "at": r.at,
            }
            for r in receipts
        ],
        "links": [await _link(personal, subject, link, sites) for link in links],
        "merges": [
            {
                "id": m.id,
                "into": m.into_lead,
                "from": m.from_lead,
                "by": m.actor,
                "reason": m.reason,
                "at": m.at,
                "undone_at": m.undone_at,
            }
            for m in (await store.merges_of(lead_ids) if lead_ids else [])
        ],
        "score_ledger": await _score_ledger(store, lead_ids, sites, on_sites),
        "webhook_deliveries": [
            {
                "id": o.id,
                "type": o.type,
                "webhook": o.webhook_id,
                "created_at": o.created_at,
                "delivered_at": o.delivered_at,
                "attempts": o.attempts,
            }
            for o in deliveries
        ],
        "privacy_requests": [
            {
                "id": p.id,
                "kind": p.kind,
                "status": p.status,
                "received_at": p.received_at,
                "due_at": p.due_at,
                "completed_at": p.completed_at,
            }
            for p in await store.requests(subjects=subject.refs)
        ],
    }


async def _lead(personal: PersonalData, row: Any) -> dict[str, Any]:
    try:
        person = (await personal.read(row)).as_dict()
    except InvalidCiphertext:
        person = {"unreadable": True}
    return {
        "id": row.id,
        **person,
        "first_touch": row.first_touch,
        "last_touch": row.last_touch,
        "merged_into": row.merged_into,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def _link(
    personal: PersonalData, subject: Subject, link: Link, sites: dict[int, str]
) -> dict[str, Any]:
    lead = next((r for r in subject.leads if r.id == link.lead_id), None)
    ip = None
    if lead is not None:
        try:
            ip = await personal.open_ip(lead, link_ref(link.vid, link.began_at), link.ip)
        except InvalidCiphertext:
            ip = None
    return {
        "visitor": link.vid,
        "lead": link.lead_id,
        "site": sites.get(link.site_id),
        "evidence": link.evidence,
        "linked_at": link.began_at,
        "covers_from": link.valid_from,
        "ended_at": link.ended_at,
        "ip": ip,
    }


async def _form_submissions(
    store: Store, personal: PersonalData, subject: Subject, events: list[Event],
    sites: dict[int, str], *, on_sites: Sequence[int] | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Each identify event, with what an unsigned one claimed (its submission record:
    kept apart from the lead, which such a claim may not rewrite); a record whose event
    is gone (retention) is listed on its own."""
    lead_ids = [r.id for r in subject.leads]
    records = await store.submissions_of(lead_ids) if lead_ids else []
    if on_sites is not None:
        records = [sub for sub in records if sub.site_id in on_sites]
    opened = {
        (sub.vid, sub.at): submission_view(sub, claim, sites)
        for sub, claim in await personal.open_submissions(subject.leads, records)
    }
    out = []
    for e in events:
        if e.type == "identify":
            out.append(_event(e, sites) | _claim_part(opened.pop((e.vid, e.at), None)))
    return out + list(opened.values())


def _claim_part(view: dict[str, Any] | None) -> dict[str, Any]:
    if view is None:
        return {"submission": None}
    return {k: view[k] for k in ("submission", "lead", "evidence", "traits", "filled")}


def submission_view(
    sub: Submission, claim: dict[str, Any] | None, sites: dict[int, str]
) -> dict[str, Any]:
    """A submission record as the timeline and the export show it (decrypted)."""
    return {
        "kind": "submission",
        "at": sub.at,
        "submission": sub.id,
        "lead": sub.lead_id,
        "visitor": sub.vid,
        "site": sites.get(sub.site_id),
        "form": sub.form,
        "evidence": "form",
        "traits": claim["traits"] if claim else None,
        "filled": claim["filled"] if claim else None,
        "unreadable": claim is None,
    }


async def _score_ledger(
    store: Store, lead_ids: list[str], sites: dict[int, str], on_sites: Sequence[int] | None
) -> list[dict[str, Any]]:
    """The points their behaviour and profile earned (profiling, GDPR art. 15): each
    entry with the rule, what earned it, when, and why in words."""
    entries = await store.score_ledgers(lead_ids) if lead_ids else []
    allowed = None if on_sites is None else set(on_sites)
    return [_ledger_entry(e, sites) for e in entries if allowed is None or e.site_id in allowed]


def _ledger_entry(e: ScoreEntry, sites: dict[int, str]) -> dict[str, Any]:
    return {
        "lead": e.lead_id, "site": sites.get(e.site_id), "rule": e.rule,
        "rules_version": e.version, "axis": e.axis, "kind": e.kind, "source": e.source,
        "object": e.object, "points": e.points, "at": e.at, "reason": e.reason,
        "actor": e.actor, "recorded_at": e.recorded_at,
    }  # fmt: skip


def _event(e: Event, sites: dict[int, str]) -> dict[str, Any]:
    return {
        "at": e.at,
        "type": e.type,
        "visitor": e.vid,
        "session": e.sid,
        "site": sites.get(e.site_id),
        "url": e.url,
        "referrer": e.referrer,
        "title": e.title,
        "name": e.name,
        "props": e.props,
        "utm_source": e.utm_source,
        "utm_medium": e.utm_medium,
        "utm_campaign": e.utm_campaign,
        "utm_term": e.utm_term,
        "utm_content": e.utm_content,
        "click_ids": e.click_ids,
        "browser": e.browser,
        "os": e.os,
        "device": e.device,
        "ip": e.ip,
    }


def counts(data: dict[str, Any]) -> dict[str, int]:
    return {section: len(data[section]) for section in SECTIONS}


def render(data: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)
    if fmt == "csv":
        return to_csv(data).encode("utf-8-sig")  # the BOM makes Excel read UTF-8
    raise ValueError(f"unknown export format {fmt!r}")


def to_csv(data: dict[str, Any]) -> str:
    """One row per item: section, at, then the item's fields as JSON-free columns."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "at", "field", "value"])
    for section in SECTIONS:
        for index, entry in enumerate(data[section]):
            item = entry if isinstance(entry, dict) else {"visitor": entry}
            at = item.get("at") or item.get("linked_at") or item.get("received_at") or ""
            for field, value in item.items():
                if value is None or value == {}:
                    continue
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                writer.writerow([f"{section}[{index}]", at, field, safe_cell(text)])
    return out.getvalue()


def safe_cell(text: str) -> str:
    """Neutralise formula injection: a cell starting with = + - @ TAB CR is text."""
    return "'" + text if text.startswith(_FORMULA_START) else text
