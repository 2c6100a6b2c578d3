"""What the API answers: one Struct per response body, encoded by msgspec.

The handlers build these and nothing else, and the OpenAPI document's response schemas
are generated from them, so what is documented is what is sent. Timeline items are a
union tagged by ``kind``.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import UNSET, Struct, UnsetType, field


class Error(Struct):
    """Every 4xx and 5xx answer; the message never holds personal data."""

    error: str


class Lead(Struct):
    """A lead with its traits decrypted."""

    id: str
    email: str
    name: str | None
    company: str | None
    phone: str | None
    fields: dict[str, str]
    first_touch: dict[str, Any] | None
    last_touch: dict[str, Any] | None
    created_at: int
    updated_at: int


class LeadsPage(Struct):
    leads: list[Lead]
    next_cursor: str | None
    standings: list[LeadStanding] | UnsetType = UNSET
    """Only with ``grade=``: each listed lead's score and grade, in the same order."""


class VisitorLink(Struct):
    """A visitor linked to a lead, and the time range the link covers."""

    visitor: str
    site: str | None
    evidence: str
    linked_at: int
    covers_from: int
    ended_at: int | None
    lead: str


class LeadConsent(Struct):
    visitor: str
    site: str
    analytics: bool
    marketing: bool
    gpc: bool
    receipt: str | None


class LeadDetail(Lead):
    visitors: list[VisitorLink]
    merged_leads: list[str]
    consent: list[LeadConsent]


class EventItem(Struct, tag_field="kind", tag="event", omit_defaults=True):
    """A collected event; fields it does not have are left out."""

    type: str
    at: int
    visitor: str
    session: str | None = None
    site: str | None = None
    url: str | None = None
    referrer: str | None = None
    title: str | None = None
    name: str | None = None
    props: dict[str, Any] | None = None
    utm: dict[str, str] = field(default_factory=dict)
    click_ids: dict[str, str] | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None


class IdentifiedItem(VisitorLink, tag_field="kind", tag="identified"):
    at: int


class MergeItem(Struct, tag_field="kind", tag="merge"):
    at: int
    merge: str
    into: str
    from_: str = field(name="from")
    by: str | None
    reason: str | None


class UnmergeItem(MergeItem, tag="unmerge"):
    pass


class ConsentItem(Struct, tag_field="kind", tag="consent"):
    """A consent receipt: what was decided, when, under which policy, from where."""

    at: int
    consent_id: str
    visitor: str
    site: str | None
    analytics: bool | None
    marketing: bool | None
    policy_version: str
    source: str


class SubmissionItem(Struct, tag_field="kind", tag="submission"):
    """What an unsigned form submission claimed (kept beside the lead, not over it)."""

    at: int
    submission: str
    lead: str
    visitor: str
    site: str | None
    form: str | None
    evidence: str
    traits: dict[str, Any] | None
    filled: list[str] | None
    unreadable: bool


TimelineItem = EventItem | IdentifiedItem | MergeItem | UnmergeItem | ConsentItem | SubmissionItem


class Timeline(Struct):
    lead: str
    items: list[TimelineItem]
    truncated: bool


class VisitorConsent(Struct):
    site: str
    analytics: bool
    marketing: bool
    gpc: bool


class Visitor(Struct):
    visitor: str
    events: list[EventItem]
    links: list[VisitorLink]
    consent: list[VisitorConsent]
    consent_receipts: list[ConsentItem]


class Change(Struct):
    """``erased`` is a tombstone: the lead is gone; delete your copy too."""

    seq: int
    lead: str
    kind: Literal["created", "updated", "identified", "merged", "unmerged", "erased"]
    at: int


class ChangesPage(Struct):
    changes: list[Change]
    cursor: int
    more: bool


class MergeRecord(Struct):
    id: str
    into: str
    from_: str = field(name="from")
    by: str
    reason: str
    at: int
    undone_at: int | None
    undone_by: str | None
    undo_reason: str | None


class Identified(Struct):
    lead: str
    created: bool
    link: str
    visitor: str


class ConsentRecorded(Struct):
    consent_id: str
    at: int


class Webhook(Struct):
    id: str
    url: str
    events: list[str]
    created_at: int


class NewWebhook(Webhook):
    """The signing secret is in this answer only: hex, and as Standard Webhooks
    libraries take it (``whsec_`` and base64)."""

    secret: str
    signing_secret: str


class Webhooks(Struct):
    webhooks: list[Webhook]


class PrivacyRequest(Struct):
    id: str
    kind: str
    status: str
    subject: str
    received_at: int
    due_at: int
    completed_at: int | None
    detail: dict[str, Any] | None


class PrivacyRequests(Struct):
    requests: list[PrivacyRequest]


class ExportBundle(Struct):
    """The access bundle (``privacy.export``, also the CLI's file format): each section's
    items are described in the README's privacy chapter."""

    format: str
    generated_at: int
    request: str
    subject: str
    leads: list[dict[str, Any]]
    visitors: list[str]
    events: list[dict[str, Any]]
    form_submissions: list[dict[str, Any]]
    consent_receipts: list[dict[str, Any]]
    links: list[dict[str, Any]]
    merges: list[dict[str, Any]]
    webhook_deliveries: list[dict[str, Any]]
    privacy_requests: list[dict[str, Any]]


class DuplicatePair(Struct):
    """名寄せ: two leads that are probably one person; ``lead`` is the older one (merge
    ``other`` into it with ``POST /api/v1/leads/{lead}/merge``)."""

    lead: str
    other: str
    confidence: Literal["certain", "likely", "possible"]
    matched: list[str]
    """Kinds of match keys they share: email, phone, name, kana, company, domain."""
    differs: list[str]
    """Kinds both have but do not share."""


class DuplicatesPage(Struct):
    pairs: list[DuplicatePair]
    next_cursor: str | None
    pending: int
    """Leads whose match keys are not computed yet (``ashiato leads match-keys``)."""


class Dismissal(Struct):
    """A pair marked "not the same": never suggested again."""

    lead: str
    other: str
    by: str
    at: int


class ScoringRules(Struct):
    """A site's scoring rules: the same document as the TOML file, as JSON."""

    site: str
    version: int
    document: dict[str, Any]
    actor: str
    created_at: int


class LedgerEntry(Struct):
    """One line of the points ledger; ``counts`` is what it counts now (decay applied)."""

    rule: str
    points: int
    counts: float
    at: int
    event: str | None
    """``event:<id>`` when an event earned it."""
    reason: str
    axis: str
    kind: str
    rules_version: int
    actor: str | None
    object: str | None
    lead: str
    """The lead that earned it (a merged lead's entries count for the lead it is merged into)."""


class LeadScore(Struct):
    """``score`` is the sum of the ledger's engagement ``counts`` at ``at``."""

    lead: str
    site: str | None
    score: float
    grade: str
    """hot, warm or cool (the site's thresholds); ``fit_grade``: A to D."""
    fit: int
    fit_grade: str
    rules_version: int | None
    at: int
    ledger: list[LedgerEntry]


class LeadStanding(Struct):
    lead: str
    site: str
    score: float
    grade: str
    fit: int
    fit_grade: str


class ReportDay(Struct):
    date: str
    """The local day (``tz``), ISO 8601."""
    visitors: int
    pageviews: int
    sessions: int
    new_leads: int
    hot_leads: int


class ReportRow(Struct):
    value: str
    """"" for none (direct traffic, no UTM, unknown device)."""
    pageviews: int
    sessions: int


class ReportAttribution(Struct):
    campaign: str
    first_touch_leads: int
    last_touch_leads: int
    first_touch_hot: int
    last_touch_hot: int


class Dashboard(Struct):
    """A site's traffic and leads over local days (``tracker.reports``); ``totals.visitors``
    is distinct over the whole range, not the sum of the days."""

    site: str
    start: str
    end: str
    tz: str
    filters: dict[str, str]
    days: list[ReportDay]
    totals: ReportDay
    top: dict[str, list[ReportRow]]
    attribution: list[ReportAttribution]
    live_visitors: int
    source: Literal["rollups", "events"]
