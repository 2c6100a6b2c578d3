"""The records the Store takes and returns: plain dataclasses, never driver rows."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

ConsentMode = Literal["opt-in", "notice"]
CONSENT_MODES: tuple[ConsentMode, ...] = ("opt-in", "notice")
EVENT_TYPES = ("pageview", "event", "identify", "consent")


IDENTIFY_POLICIES = ("any", "signed")


@dataclass(frozen=True, slots=True)
class CmpMapping:
    """Which consent management platforms the site's tag reads, and which of their
    purposes grant ashiato's (``privacy.consent.from_cmp``); every one listed must be
    granted. Also what the snippet's ``cmp.js`` attributes say."""

    signals: tuple[str, ...] = ()
    """``tcf`` (IAB TCF v2.2), ``gcm`` (Google Consent Mode v2); empty: no CMP adapter."""
    tcf_analytics: tuple[str, ...] = ("1", "8")
    """TCF purposes: storing on the device, measuring content performance. ``p8``: the
    publisher's own consent for purpose 8 (the publisher TC segment)."""
    tcf_marketing: tuple[str, ...] = ("1", "3", "5")
    """Storing on the device, and the profiles of purposes 3 and 5."""
    gcm_analytics: tuple[str, ...] = ("analytics_storage",)
    gcm_marketing: tuple[str, ...] = ("ad_storage", "ad_user_data", "ad_personalization")


DEFAULT_CMP_MAPPING = CmpMapping()


@dataclass(frozen=True, slots=True)
class SiteSettings:
    identify: str = "any"
    """``any``: forms and ``identify`` from the page count; ``signed``: only a valid
    signed token or the server API identifies a visitor (unsigned ones are ignored)."""
    forms: str = "marked"
    """``marked``: the tag captures forms with ``data-ashiato``; ``all``: every form."""
    policy_version: str = "unspecified"
    """The privacy-notice version receipts refer to when the page does not say."""
    retention_days: tuple[tuple[str, int], ...] = ()
    """Per data class overrides of the retention defaults."""
    cookie_domain: str = ""
    """The registrable domain the collector may set the visitor cookie for when it is
    reached on a sibling host (``t.example.co.jp`` for ``www.example.co.jp``)."""
    cmp: CmpMapping = DEFAULT_CMP_MAPPING
    """The site's consent management platform signals and how they map to purposes."""
    removed_at: int = 0
    """When the site was removed (0: it is not): the collector no longer knows its key;
    what it collected stays until retention deletes it."""


DEFAULT_SITE_SETTINGS = SiteSettings()


@dataclass(frozen=True, slots=True)
class Site:
    id: int
    key: str
    name: str
    origins: tuple[str, ...]
    consent_mode: ConsentMode
    created_at: int
    settings: SiteSettings = DEFAULT_SITE_SETTINGS
    secret: bytes | None = None
    """The signed-identify secret, sealed (never plaintext at rest)."""

    def allows_origin(self, origin: str) -> bool:
        return origin in self.origins


@dataclass(slots=True)
class Event:
    """One accepted event, enriched and scrubbed, ready to store."""

    site_id: int
    type: str
    vid: str
    at: int
    """Server time of the event, milliseconds since the epoch."""
    sid: str | None = None
    url: str | None = None
    referrer: str | None = None
    title: str | None = None
    name: str | None = None
    props: dict[str, Any] | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    click_ids: dict[str, str] | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None
    ip: str | None = None
    """Truncated client address (IPv4 /24, IPv6 /48); never the full one."""
    id: int | None = field(default=None, compare=False)
    message_id: bytes | None = field(default=None, compare=False)
    """A server-side sender's message id (hashed): stored once per site (not a column of
    ``events``; ``tables/serverside.py`` keeps the ids it has seen)."""


@dataclass(frozen=True, slots=True)
class ConsentReceipt:
    """One consent decision, kept as proof (append-only)."""

    id: str
    """The consent id: 32 hex, chosen by the tag (a replay of it is ignored) or by us."""
    site_id: int
    vid: str
    analytics: bool | None
    """True granted, False refused, None: this receipt does not speak about it."""
    marketing: bool | None
    policy_version: str
    source: str
    """``banner`` (the tag), ``tcf`` / ``gcm`` (the site's CMP, read by the tag), ``api``,
    ``gpc`` (Global Privacy Control), ``forget``."""
    at: int
    signal: dict[str, Any] | None = None
    """What the CMP said, as the server read it: ``tcf``: cmp id and version, TCF policy
    version, vendor list version, the TC string; ``gcm``: the consent types' states."""


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A visitor's current consent on one site: the sum of their receipts."""

    analytics: bool
    marketing: bool
    gpc: bool
    """Global Privacy Control has been seen: marketing stays off unless granted after it."""
    receipt_id: str
    at: int


@dataclass(frozen=True, slots=True)
class Forget:
    """Erase a visitor's anonymous data (asked by whoever holds their cookie)."""

    vid: str
    receipt: ConsentReceipt


WriteItem = Event | ConsentReceipt | Forget


@dataclass(slots=True)
class WriteResult:
    stored: int = 0
    refused: int = 0
    """Events the visitor's consent did not allow."""
    receipts: int = 0
    forgotten: int = 0
    """Events erased by Forget items."""
    duplicates: int = 0
    """Events whose message id was stored before (a sender's retry)."""


class ConsentRules(Protocol):
    """The consent decisions (``privacy.consent``), applied inside the write transaction."""

    def admit(self, event: Event, state: ConsentState | None) -> bool:
        """May this event be stored, given the visitor's current state on its site?"""

    def apply(self, receipt: ConsentReceipt, state: ConsentState | None) -> ConsentState | None:
        """The state after ``receipt``, or None when the receipt changes nothing and is
        not worth keeping (a repeated GPC signal)."""


# -- identity -------------------------------------------------------------------------

EVIDENCE = ("form", "signed", "api")


@dataclass(frozen=True, slots=True)
class LeadRow:
    """A lead as stored: personal fields are ciphertexts under the lead's data key."""

    id: str
    email_index: bytes
    key_id: str
    email: bytes
    name: bytes | None
    company: bytes | None
    phone: bytes | None
    fields: bytes | None
    first_touch: dict[str, Any] | None
    last_touch: dict[str, Any] | None
    merged_into: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    vid: str
    lead_id: str
    site_id: int
    evidence: str
    began_at: int
    valid_from: int
    """Events from this time on belong to the lead (0 for a visitor's first link)."""
    ended_at: int | None
    """Events from this time on no longer do (the browser identified as someone else)."""
    ip: bytes | None


@dataclass(frozen=True, slots=True)
class LinkRequest:
    vid: str
    lead_id: str
    site_id: int
    evidence: str
    at: int
    ip: bytes | None
    changed_at: int | None = None
    """The server's clock now: the lead's change time (``updated_at``, the change feed).
    ``at`` (the identification's event time) may lie in the past; a change time must not,
    or ``updated_since`` would miss it. ``at`` when None."""


class Stitch(StrEnum):
    """What identifying a visitor did to its links (``identity.stitching``); the value is
    the ``link`` of the identify API's answer."""

    KEPT = "kept"
    """Already linked to this person: nothing changes."""
    FIRST = "first"
    """The visitor's first link: it claims the whole anonymous past."""
    SWITCHED = "switched"
    """Linked to someone else before: a new link from now on."""


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    action: Stitch
    link: Link
    ended: Link | None = None


Touch = dict[str, Any]
"""Campaign data of one visit (``at``, ``landing_page``, ``referrer``, ``utm_*``)."""


class StitchRules(Protocol):
    """The stitching decisions (``identity.stitching``), taken inside the transaction
    that links the visitor."""

    def decide(self, current: Link | None, current_root: str | None, new_root: str) -> Stitch:
        """``current``: the visitor's open link; ``current_root``: the lead it stands for
        now; ``new_root``: the lead the identification stands for."""

    def touches(self, events: Sequence[Event], since: int) -> tuple[Touch, Touch] | None:
        """The first and the last touch among the visitor's events (oldest first) that
        the link gives the lead: those from ``since`` on."""

    def fold(
        self, first: Touch | None, last: Touch | None, touches: tuple[Touch, Touch]
    ) -> tuple[Touch | None, Touch | None]:
        """The lead's first and last touch after this visitor's are folded in."""


@dataclass(frozen=True, slots=True)
class Submission:
    """What one unsigned identification (a form) claimed about a known lead, kept as its
    own record instead of rewriting the lead (``identity.claims``)."""

    id: str
    lead_id: str
    vid: str
    site_id: int
    form: str | None
    """The form's id, as the tag sent it (the identify event's name)."""
    at: int
    """The identify event's time."""
    claim: bytes
    """Sealed JSON under the lead's data key: the traits sent and which ones filled."""


@dataclass(frozen=True, slots=True)
class Merge:
    id: str
    into_lead: str
    from_lead: str
    actor: str
    reason: str
    at: int
    undone_at: int | None = None
    undone_by: str | None = None
    undo_reason: str | None = None


class MergeRules(Protocol):
    """Which merges and unmerges may be applied (``identity.merging``), checked inside
    the transaction that applies them; each raises NotFound or Conflict when not."""

    def admit_merge(
        self, merge: Merge, found: Collection[str], from_root: str, into_root: str
    ) -> None:
        """``found``: which of the two leads exist; ``*_root``: whom each stands for now."""

    def admit_unmerge(self, merge: Merge | None) -> Merge:
        """The merge to undo (``None``: no merge has that id)."""


@dataclass(frozen=True, slots=True)
class MatchCandidates:
    """What 名寄せ suggestions are worked out from (``identity.duplicates``): pairs of
    leads sharing a match key, and everything needed to judge them."""

    pairs: list[tuple[str, str]]
    """Leads (as stored, merged or not) that share at least one key of a listed kind."""
    leads: dict[str, tuple[str | None, int]]
    """Every lead named in ``pairs`` or in a merge: id -> (merged_into, created_at)."""
    keys: list[tuple[str, str, bytes]]
    """(lead id, kind, value) of every key of those leads."""
    dismissed: list[tuple[str, str]]
    """Pairs marked "not the same"."""


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    lead_id: str
    kind: str
    at: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: bytes
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None
    sites: tuple[int, ...] | None = None
    """The site ids the key is limited to (``tracker.scope``); None: every site."""


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: bytes
    """Sealed signing secret."""
    created_at: int
    disabled_at: int | None = None

    def subscribes_to(self, event_type: str) -> bool:
        """Whether a change of ``event_type`` (``lead.identified`` …) is sent here."""
        return event_type in self.events


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: str
    webhook_id: str
    type: str
    lead_id: str
    data: dict[str, Any]
    created_at: int
    attempts: int = 0
    next_attempt_at: int = 0
    delivered_at: int | None = None
    last_error: str | None = None


# -- legal operations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    id: str
    kind: str
    """``export`` or ``erase``."""
    status: str
    """``received``, ``completed`` or ``failed``."""
    subject: str
    """A lead id or visitor id (pseudonymous), never an email."""
    received_at: int
    due_at: int
    completed_at: int | None = None
    export_path: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    at: int
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    mac: bytes = b""


class AuditChain(Protocol):
    def mac(self, previous: bytes, row: AuditRow) -> bytes:
        """The MAC chaining ``row`` to the previous row's MAC (``privacy.audit``)."""


# -- 外部送信 disclosure ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DisclosureRecipient:
    """One entry of a site's 外部送信 notice (``privacy.disclosure``): a recipient the
    site registered, or (``kind`` operator) who runs ashiato for the site. A change
    ends the row and adds another."""

    id: str
    site_id: int
    kind: str
    """``recipient`` or ``operator``."""
    legal_name: str
    service_name: str
    items: tuple[str, ...]
    """What is sent: keys of ``privacy.disclosure.ITEMS``."""
    purposes: tuple[str, ...]
    """Keys of ``privacy.disclosure.PURPOSES``."""
    opt_out_url: str | None
    policy_version: str
    """The site's policy version when the entry was added."""
    added_at: int
    removed_at: int | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    request_id: str
    lead_ids: tuple[str, ...]
    vids: tuple[str, ...]
    key_ids: tuple[str, ...]
    at: int
    done_at: int | None = None


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """What one erasure deletes from the data store (computed by ``privacy.dsr``)."""

    lead_ids: tuple[str, ...]
    links: tuple[Link, ...]
    """Each link's events (its visitor, its time range) go."""
    whole_vids: tuple[str, ...]
    """Visitors that belong to nobody else: all their events, consent and links go."""
    ledger_seq: int
    at: int


@dataclass(slots=True)
class ErasureCounts:
    leads: int = 0
    events: int = 0
    links: int = 0
    receipts: int = 0
    merges: int = 0
    outbox: int = 0


# -- the console ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: str
    email_index: bytes
    email: bytes
    """Sealed; opened by the console and the CLI only."""
    role: str
    """``admin``, ``marketing`` or ``legal``."""
    password: str
    """Argon2id, encoded with its salt and parameters."""
    totp: bytes | None
    """The sealed TOTP secret; None: no second factor."""
    language: str
    time_zone: str
    created_at: int
    disabled_at: int | None = None
    sites: tuple[int, ...] | None = None
    """The site ids the user is limited to (``tracker.scope``); None: every site."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    token_hash: bytes
    user_id: str
    created_at: int
    seen_at: int
    confirmed_at: int
    """When the password was last entered (sign-in or re-authentication)."""


# -- scoring ---------------------------------------------------------------------------

SCORE_KINDS = ("event", "profile", "manual")


@dataclass(frozen=True, slots=True)
class ScoreEntry:
    """One line of a lead's points ledger (append-only)."""

    rule: str
    """The rule's id, or ``manual``."""
    axis: str
    """``engagement`` (decays) or ``fit`` (does not)."""
    kind: str
    """``event`` (an event earned it), ``profile`` (a trait or touch: counts only while
    the lead is not merged into another), ``manual`` (an adjustment with an actor)."""
    source: str
    """What earned it: ``event:<id>``, ``trait:<name>#<n>``, ``touch:first#<n>``,
    ``manual:<id>``; unique per lead, site, rules version and rule."""
    points: int
    at: int
    """When it was earned (the event's time): decay counts from here."""
    reason: str
    object: str | None = None
    version: int = 0
    """The rules version it was computed under (0: manual)."""
    actor: str | None = None
    lead_id: str = ""
    site_id: int = 0
    recorded_at: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Standing:
    """A lead's score at one moment."""

    score: float
    grade: str
    fit: int
    fit_grade: str


@dataclass(frozen=True, slots=True)
class ScoreState:
    """What is kept per lead and site beside the ledger: which rules version its entries
    are under, whether ``lead.hot`` is armed, and the score when last computed (``score``
    at ``at``: for listing and sorting; decay makes it exact at any later time)."""

    lead_id: str
    site_id: int
    version: int
    armed: bool
    score: float
    fit: int
    at: int


@dataclass(frozen=True, slots=True)
class LeadScore:
    """A lead's ledger as it counts now: the root lead, its state on the site, and the
    entries its score is the sum of."""

    lead_id: str
    site_id: int
    state: ScoreState | None
    entries: list[ScoreEntry]


@dataclass(frozen=True, slots=True)
class Rescored:
    lead_id: str
    before: Standing
    after: Standing


class ScoringRules(Protocol):
    """A site's compiled rules (``scoring.rules``), applied inside the transaction that
    writes the ledger."""

    version: int
    site_id: int

    def evaluate(
        self, prior: Sequence[ScoreEntry], events: Sequence[Event], profile: Any, now: int
    ) -> list[ScoreEntry]:
        """The entries ``events`` (and ``profile``, unless None) earn, after ``prior``;
        ``now`` is when a trait rule that starts to match earns its points."""

    def standing(self, entries: Sequence[ScoreEntry], now: int) -> Standing: ...

    def hot(self, before: float, after: float, armed: bool) -> tuple[bool, bool]:
        """(send ``lead.hot`` now?, armed afterwards) for a score going ``before`` ->
        ``after``; ``before`` is the lowest it has been since it was last computed."""

    def hot_data(self, entries: Sequence[ScoreEntry], now: int) -> dict[str, Any]:
        """The score part of the ``lead.hot`` payload (no personal data)."""
