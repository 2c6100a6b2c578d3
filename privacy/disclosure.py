"""The 外部送信 notice (電気通信事業法 27条の12): what a site's pages send, to whom, why.

For each recipient the notice names what is sent (from the enumerated ``ITEMS``, never
"…等"), the recipient (legal and service name), the purposes (``PURPOSES``) and how to
opt out. ashiato's own entry is generated from the beacon schema the collector validates
(``tracker.beacon.FIELDS``), what every request carries (address, user agent) and the
event columns the collector stores, so a field the tag starts to send (or a column the
collector starts to keep) without a line here fails a test before it ships. Other
recipients are registered per site; every change is audited and the notice is
versioned: the site's policy version, and a revision counting the changes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from privacy.audit import AuditLog
from tracker.beacon import FIELDS
from tracker.errors import Invalid, NotFound
from tracker.storage import Store
from tracker.storage.records import DisclosureRecipient, Site
from tracker.storage.rows import EVENT_COLUMN_NAMES

LANGUAGES = ("ja", "en")

ITEMS: dict[str, tuple[str, str]] = {
    "site_id": ("サイトの識別子", "the site's identifier"),
    "visitor_id": ("閲覧者を識別する番号（Cookie _ashiato_vid に保存する乱数）",
                   "a visitor number (a random number kept in the _ashiato_vid cookie)"),
    "session_id": ("セッションの識別子", "a session identifier"),
    "page_url": ("閲覧したページのURL（広告のクリックIDとUTMパラメータを含む）",
                 "the address of the page viewed (with its ad click ids and UTM parameters)"),
    "referrer": ("参照元のURL", "the referring address"),
    "page_title": ("ページのタイトル", "the page title"),
    "event": ("操作の種類と名称（ページの閲覧、外部リンクのクリック、ダウンロード、"
              "フォームの送信、サイトが定める操作）",
              "the kind and name of the action (page view, outbound link click, download, "
              "form submission, an action the site defines)"),
    "event_properties": ("操作に付随する値（クリックしたリンクのURL、サイトが定める値）",
                         "values that go with the action (the link clicked, values the site "
                         "defines)"),
    "time": ("操作の日時", "the time of the action"),
    "consent": ("同意の選択（アクセス解析、マーケティング）、同意の記録番号、"
                "プライバシーポリシーの版",
                "the consent choices (analytics, marketing), the consent record number and "
                "the privacy policy version"),
    "cmp_signal": ("同意管理ツールの記録（IAB TCF の TC文字列、Google 同意モードの状態）",
                   "the consent management platform's record (IAB TCF string, Google "
                   "Consent Mode states)"),
    "gpc": ("Global Privacy Control の設定", "the Global Privacy Control setting"),
    "form_input": ("フォームへの入力内容（メールアドレス、氏名、会社名、部署、役職、電話番号、"
                   "業種、国、市区町村、問い合わせ内容、サイトが指定した項目）と、フォームの名前",
                   "what is entered in a form (email address, name, company, department, job "
                   "title, phone, industry, country, city, message, fields the site marks) "
                   "and the form's name"),
    "identify_token": ("サイトが発行する本人確認の署名", "a signature the site issues to confirm "
                       "an identification"),
    "ip_address": ("IPアドレス", "the IP address"),
    "user_agent": ("ブラウザ、OS、端末の種類（ユーザーエージェント）",
                   "the browser, operating system and device type (user agent)"),
    "cookie_id": ("Cookie に保存された識別子", "an identifier kept in a cookie"),
    "advertising_id": ("広告識別子", "an advertising identifier"),
    "email_address": ("メールアドレス", "the email address"),
    "screen": ("画面の大きさと言語の設定", "the screen size and language setting"),
    "location": ("IPアドレスから推定したおおよその地域",
                 "the rough region guessed from the IP address"),
    "purchase": ("購入と申込みの内容", "what was bought or applied for"),
}  # fmt: skip

PURPOSES: dict[str, tuple[str, str]] = {
    "analytics": ("サイトの利用状況の分析と改善", "analysing and improving how the site is used"),
    "marketing": ("見込み客の特定と、閲覧履歴に基づく営業・マーケティング活動"
                  "（スコアリング、営業への引き継ぎ）",
                  "identifying prospects, and sales and marketing based on their browsing "
                  "(scoring, hand-over to sales)"),
    "consent_records": ("同意の記録と証明", "recording and proving consent"),
    "security": ("不正な利用の検知と防止", "detecting and preventing abuse"),
    "advertising": ("広告の配信と効果の測定", "delivering advertising and measuring it"),
    "personalization": ("表示する内容の最適化", "tailoring what the site shows"),
    "support": ("問い合わせへの対応", "answering enquiries"),
}  # fmt: skip

FIELD_ITEMS: dict[str, str] = {
    "site": "site_id", "type": "event", "vid": "visitor_id", "sid": "session_id",
    "url": "page_url", "referrer": "referrer", "title": "page_title", "ts": "time",
    "sent": "time", "name": "event", "props": "event_properties", "consent": "consent",
    "cid": "consent", "policy": "consent", "traits": "form_input", "form": "form_input",
    "token": "identify_token", "gpc": "gpc", "source": "cmp_signal", "signal": "cmp_signal",
}  # fmt: skip
"""Each beacon field -> the item it sends (a test checks every field has one)."""
REQUEST_ITEMS = ("ip_address", "user_agent")
"""What every request to the collector carries besides the beacon."""
STORED_ITEMS: dict[str, str] = {
    "site_id": "site_id", "type": "event", "vid": "visitor_id", "sid": "session_id",
    "at": "time", "url": "page_url", "referrer": "referrer", "title": "page_title",
    "name": "event", "props": "event_properties", "utm_source": "page_url",
    "utm_medium": "page_url", "utm_campaign": "page_url", "utm_term": "page_url",
    "utm_content": "page_url", "click_ids": "page_url", "browser": "user_agent",
    "browser_version": "user_agent", "os": "user_agent", "os_version": "user_agent",
    "device": "user_agent", "ip": "ip_address",
}  # fmt: skip
"""Each stored event column -> the item it comes from (a test checks every column)."""
ASHIATO_PURPOSES = ("analytics", "marketing", "consent_records", "security")
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Notice:
    site: Site
    entries: list[DisclosureRecipient]
    """Every entry, in force or ended (the revision counts their changes)."""

    @property
    def revision(self) -> int:
        return len(self.entries) + sum(e.removed_at is not None for e in self.entries)

    @property
    def updated_at(self) -> int:
        times = [t for e in self.entries for t in (e.added_at, e.removed_at) if t is not None]
        return max(times, default=self.site.created_at)

    def current(self, kind: str) -> list[DisclosureRecipient]:
        return [e for e in self.entries if e.kind == kind and e.removed_at is None]

    def document(self) -> dict[str, Any]:
        """The notice in both languages (``.json``; the HTML picks one)."""
        return {
            "site": self.site.key,
            "policy_version": self.site.settings.policy_version,
            "revision": self.revision,
            "updated_at": iso(self.updated_at),
            "recipients": [self.ashiato()] + [recipient(e) for e in self.current("recipient")],
        }

    def ashiato(self) -> dict[str, Any]:
        operator = next(iter(self.current("operator")), None)
        sent = [FIELD_ITEMS[f] for f in FIELDS] + list(REQUEST_ITEMS)
        items = dict.fromkeys(sent + [STORED_ITEMS[c] for c in EVENT_COLUMN_NAMES])
        return {
            "id": "ashiato",
            "legal_name": operator.legal_name if operator else self.site.name,
            "service_name": "ashiato",
            "items": [item(k) for k in items],
            "fields": list(FIELDS),
            "purposes": [purpose(k) for k in ASHIATO_PURPOSES],
            "opt_out_url": operator.opt_out_url if operator else None,
        }


def recipient(entry: DisclosureRecipient) -> dict[str, Any]:
    return {"id": entry.id, "legal_name": entry.legal_name, "service_name": entry.service_name,
            "items": [item(k) for k in entry.items],
            "purposes": [purpose(k) for k in entry.purposes],
            "opt_out_url": entry.opt_out_url, "since": iso(entry.added_at)}  # fmt: skip


def item(key: str) -> dict[str, str]:
    ja, en = ITEMS[key]
    return {"key": key, "ja": ja, "en": en}


def purpose(key: str) -> dict[str, str]:
    ja, en = PURPOSES[key]
    return {"key": key, "ja": ja, "en": en}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def check_entry(legal_name: str, service_name: str, items: Sequence[str],
                purposes: Sequence[str], opt_out_url: str | None) -> None:  # fmt: skip
    """Refuse what the notice could not state plainly: names, enumerated items and
    purposes, an http(s) opt-out address."""
    for label, name in (("legal name", legal_name), ("service name", service_name)):
        if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
            raise Invalid(f"{label} must be 1 to {MAX_NAME} printable characters")
    for label, given, known in (("item", items, ITEMS), ("purpose", purposes, PURPOSES)):
        unknown = [g for g in given if g not in known]
        if not given or unknown:
            raise Invalid(f"each {label} must be one of: {', '.join(known)}")
    if opt_out_url is not None:
        parts = urlsplit(opt_out_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(opt_out_url) > 2000:
            raise Invalid("opt-out URL must be an http(s) address")


class Disclosures:
    """The notice's entries, changed with an audit row each."""

    def __init__(self, store: Store, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit

    async def notice(self, site: Site) -> Notice:
        return Notice(site, await self.store.disclosure_entries(site.id))

    async def add(self, site: Site, *, legal_name: str, service_name: str, items: Sequence[str],
                  purposes: Sequence[str], opt_out_url: str | None, actor: str,
                  now: int) -> DisclosureRecipient:  # fmt: skip
        check_entry(legal_name, service_name, items, purposes, opt_out_url)
        entry = DisclosureRecipient(secrets.token_hex(8), site.id, "recipient", legal_name.strip(),
                                    service_name.strip(), tuple(dict.fromkeys(items)),
                                    tuple(dict.fromkeys(purposes)), opt_out_url,
                                    site.settings.policy_version, now)  # fmt: skip
        await self.store.add_disclosure_entry(entry)
        await self._audit(actor, "disclosure.add", site, entry.id, entry.service_name)
        return entry

    async def set_operator(self, site: Site, *, legal_name: str, opt_out_url: str | None,
                           actor: str, now: int) -> DisclosureRecipient:  # fmt: skip
        check_entry(legal_name, "ashiato", ["site_id"], ["analytics"], opt_out_url)
        entry = DisclosureRecipient(secrets.token_hex(8), site.id, "operator", legal_name.strip(),
                                    "ashiato", (), (), opt_out_url, site.settings.policy_version,
                                    now)  # fmt: skip
        await self.store.add_disclosure_entry(entry)
        await self._audit(actor, "disclosure.operator", site, entry.id, "ashiato")
        return entry

    async def remove(self, site: Site, entry_id: str, *, actor: str, now: int) -> None:
        if not await self.store.end_disclosure_entry(site.id, entry_id, now):
            raise NotFound(f"site {site.key} lists no recipient {entry_id!r}")
        await self._audit(actor, "disclosure.remove", site, entry_id, "")

    async def _audit(self, actor: str, action: str, site: Site, entry_id: str,
                     service: str) -> None:  # fmt: skip
        revision = (await self.notice(site)).revision
        await self.audit.record(actor, action, f"site:{site.key}",
                                {"entry": entry_id, "service": service, "revision": revision,
                                 "policy_version": site.settings.policy_version})  # fmt: skip
