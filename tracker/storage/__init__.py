"""The Store protocol: what ashiato asks of a database, in domain words.

Nothing outside a backend module knows which database it talks to. ``open_store(url)``
picks the backend from the URL scheme; each backend keeps its SQL literal and its
migrations in ``migrations/<backend>/NNNN_name.sql``. Methods return dataclasses from
``tracker.storage.records``, never driver rows. Personal data reaches the store only as
ciphertext (``privacy.crypto`` seals it first); the store cannot read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tracker.errors import ConfigError
from tracker.storage.records import (
    ApiKey,
    AuditChain,
    AuditRow,
    Change,
    ConsentMode,
    ConsentReceipt,
    ConsentRules,
    ConsentState,
    ConsoleSession,
    ConsoleUser,
    DisclosureRecipient,
    ErasureCounts,
    ErasurePlan,
    Event,
    LeadRow,
    LeadScore,
    Link,
    LinkOutcome,
    LinkRequest,
    MatchCandidates,
    Merge,
    MergeRules,
    OutboxItem,
    PrivacyRequest,
    Rescored,
    ScoreEntry,
    ScoreState,
    ScoringRules,
    Site,
    SiteSettings,
    StitchRules,
    Submission,
    Webhook,
    WriteItem,
    WriteResult,
)
from tracker.storage.tables.reports import Readings


class Store(Protocol):
    # -- lifecycle ---------------------------------------------------------------------
    async def migrate(self) -> list[int]:
        """Apply pending migrations, each in one transaction; return the versions applied."""

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StorageError unless the database answers a trivial query."""

    # -- sites -------------------------------------------------------------------------
    async def add_site(
        self,
        *,
        key: str,
        name: str,
        origins: Sequence[str],
        consent_mode: ConsentMode,
        now: int,
        settings: SiteSettings = ...,
        secret: bytes | None = None,
    ) -> Site:
        """Create a site; raise ``Conflict`` when the name is taken."""

    async def update_site(self, site: Site) -> None: ...

    async def list_sites(self) -> list[Site]: ...

    async def get_system_key(self, name: str) -> str | None: ...

    async def system_key(self, name: str, candidate: str) -> str:
        """The data key id that seals system secrets; ``candidate`` if none was set."""

    # -- events and consent ------------------------------------------------------------
    async def write_batch(self, items: Sequence[WriteItem], rules: ConsentRules) -> WriteResult:
        """Receipts, forgets and events in order, in one transaction, durable on return;
        each event is stored only if ``rules`` admit it under its visitor's consent."""

    async def visitor_events(
        self, vid: str, *, limit: int = 1000, sites: Sequence[int] | None = None
    ) -> list[Event]:
        """A visitor's events, oldest first."""

    async def events_page(self, *, after_id: int = 0, limit: int = 1000) -> list[Event]:
        """Events in storage order after ``after_id`` (for paging through everything)."""

    async def count_events(self) -> int: ...

    async def consent_receipts_of(self, vids: Sequence[str]) -> list[ConsentReceipt]: ...

    async def consent_state(self, site_id: int, vid: str) -> ConsentState | None: ...

    # -- server-side ingestion -----------------------------------------------------------
    async def set_write_key(self, site_id: int, key_hash: bytes, *, now: int) -> None:
        """The site's write key (its SHA-256) is this one from now on."""

    async def site_of_write_key(self, key_hash: bytes) -> int | None: ...

    async def purge_seen_messages(self, before: int, *, limit: int) -> int:
        """Forget message ids recorded before ``before`` (a resend after that is new)."""

    # -- leads and links ---------------------------------------------------------------
    async def create_lead(self, lead: LeadRow) -> tuple[LeadRow, bool]:
        """Insert unless the email index exists; return (the lead that has it, created?)."""

    async def update_lead_fields(
        self,
        lead_id: str,
        columns: dict[str, bytes | None],
        at: int,
        *,
        expected: dict[str, bytes | None] | None = None,
    ) -> bool:
        """Set the sealed columns; ``updated_at`` becomes ``at`` unless it is later already.
        With ``expected``: only if each named column still holds that value (else False)."""

    async def add_submission(self, submission: Submission) -> None: ...

    async def submissions_of(self, lead_ids: Sequence[str]) -> list[Submission]:
        """The leads' submission records, oldest first."""

    async def lead(self, lead_id: str) -> LeadRow | None: ...

    async def lead_by_index(self, email_index: bytes) -> LeadRow | None: ...

    async def resolve_lead(self, lead_id: str) -> str | None:
        """The lead that stands for this person now (after merges); None if unknown."""

    async def lead_family(self, root: str) -> list[str]:
        """``root`` and every lead merged into it, transitively."""

    async def leads_page(
        self, *, updated_since: int, after: tuple[int, str] | None, limit: int
    ) -> list[LeadRow]: ...

    async def link_visitor(self, req: LinkRequest, rules: StitchRules) -> LinkOutcome:
        """Link a visitor to a lead as ``rules`` decide, with change and outbox rows."""

    async def links_of_leads(self, lead_ids: Sequence[str]) -> list[Link]: ...

    async def links_of_visitor(self, vid: str) -> list[Link]: ...

    async def link_events(
        self, links: Sequence[Link], *, limit: int, sites: Sequence[int] | None = None
    ) -> list[Event]:
        """The events the links cover (visitor and time range), in time order; with
        ``sites``, only those on these sites."""

    async def shown_events(
        self, links: Sequence[Link], *, limit: int, sites: Sequence[int] | None = None
    ) -> list[Any]:
        """``link_events`` as rows of ``rows.SHOWN_EVENT_COLUMNS``, what a timeline
        shows (``tracker.api.common.event_item`` reads them)."""

    async def lead_sites(self, lead_ids: Sequence[str]) -> dict[str, frozenset[int]]:
        """The sites of each lead's (and its merged leads') links and covered events."""

    async def merge_leads(self, merge: Merge, rules: MergeRules) -> None:
        """Record ``merge`` if ``rules`` admit it, with change and outbox rows."""

    async def unmerge_leads(
        self, merge_id: str, *, actor: str, reason: str, at: int, rules: MergeRules
    ) -> Merge:
        """Undo the merge if ``rules`` admit it; the merge as undone."""

    async def open_merge(self, into_lead: str, from_lead: str) -> Merge | None: ...

    async def merges_of(self, lead_ids: Sequence[str]) -> list[Merge]: ...

    async def changes_page(self, *, after: int, limit: int) -> list[Change]: ...

    # -- 名寄せ (identity resolution) -----------------------------------------------------
    async def set_match_keys(
        self,
        lead_id: str,
        keys: Sequence[tuple[str, bytes]],
        *,
        version: int,
        sealed: dict[str, bytes | None],
    ) -> bool:
        """Replace the lead's (kind, HMAC) match keys, only if its sealed columns still
        hold ``sealed`` (what the keys were computed from); False otherwise."""

    async def leads_without_keys(self, version: int, *, after: str, limit: int) -> list[LeadRow]:
        """Leads (by id, after ``after``) with no match keys of this version."""

    async def count_without_keys(self, version: int) -> int: ...

    async def match_candidates(
        self, kinds: Sequence[str], *, max_shared: int, limit: int
    ) -> MatchCandidates:
        """Pairs sharing a key of ``kinds`` (one held by at most ``max_shared`` leads),
        kind by kind in the order given, at most ``limit``."""

    async def dismiss_pair(self, lead_a: str, lead_b: str, *, actor: str, at: int) -> bool:
        """Mark the pair "not the same" (kept); False if either lead does not exist."""

    # -- API keys and webhooks -----------------------------------------------------------
    async def add_api_key(self, key: ApiKey) -> None: ...

    async def api_key(self, key_id: str) -> ApiKey | None: ...

    async def list_api_keys(self) -> list[ApiKey]: ...

    async def touch_api_key(self, key_id: str, at: int) -> None: ...

    async def revoke_api_key(self, key_id: str, at: int) -> bool: ...

    async def add_webhook(self, hook: Webhook) -> None: ...

    async def webhooks(self) -> list[Webhook]: ...

    async def webhook(self, hook_id: str) -> Webhook | None: ...

    async def disable_webhook(self, hook_id: str, at: int) -> bool: ...

    async def due_outbox(
        self, now: int, *, limit: int, webhook_id: str | None = None
    ) -> list[OutboxItem]:
        """Undelivered items due by ``now``, oldest first; of one endpoint if named."""

    async def outbox_of(self, lead_ids: list[str]) -> list[OutboxItem]: ...

    async def mark_delivered(self, item_id: str, at: int, attempts: int) -> None: ...

    async def deliveries_of(self, webhook_id: str, *, limit: int) -> list[OutboxItem]:
        """An endpoint's deliveries (outbox rows), newest first."""

    async def enqueue_delivery(self, item: OutboxItem) -> None: ...

    async def redeliver(self, item_id: str, at: int) -> bool:
        """Make an outbox row due again at ``at`` (same delivery id); False if unknown."""

    async def mark_failed(
        self, item_id: str, *, attempts: int, retry_at: int, error: str
    ) -> None: ...

    # -- legal operations --------------------------------------------------------------
    async def add_request(self, req: PrivacyRequest) -> None: ...

    async def finish_request(
        self, request_id: str, *, status: str, at: int, detail: dict[str, Any],
        export_path: str | None = None,
    ) -> None: ...  # fmt: skip

    async def request(self, request_id: str) -> PrivacyRequest | None: ...

    async def requests(
        self, *, subjects: Sequence[str] = (), limit: int = 1000
    ) -> list[PrivacyRequest]: ...

    async def forget_export_paths(self, request_ids: Sequence[str]) -> None: ...

    async def erase(self, plan: ErasurePlan) -> ErasureCounts:
        """Delete what the plan names in one transaction, write the tombstone, and move
        the erasure marker to the plan's ledger entry."""

    async def erasure_marker(self) -> int:
        """The last erasure-ledger entry applied to this database (a restore lowers it)."""

    async def purge_events(self, site_id: int, before: int, *, limit: int) -> int: ...

    async def drop_expired_partitions(self, before: int) -> int:
        """Drop whole stored partitions of events (every site's) that end at or before
        ``before``; return how many events went (0 where events are not partitioned)."""

    async def count_events_before(self, site_id: int, before: int) -> int: ...

    async def idle_visitors(self, site_id: int, before: int, *, limit: int) -> list[str]: ...

    async def purge_visitor_state(self, site_id: int, vids: Sequence[str]) -> int: ...

    async def purge_receipts(self, site_id: int, before: int, *, limit: int) -> int: ...

    async def count_receipts_before(self, site_id: int, before: int) -> int: ...

    async def inactive_leads(self, before: int, *, limit: int) -> list[str]: ...

    async def append_audit(self, row: AuditRow, chain: AuditChain) -> AuditRow:
        """Append ``row`` (its seq is assigned) chained to the last row's MAC."""

    async def audit_page(self, *, after: int, limit: int) -> list[AuditRow]: ...

    async def recent_audit(
        self, *, action_prefix: str = "", actor: str = "", subject: str = "", limit: int
    ) -> list[AuditRow]:
        """The newest rows first; only of the action family, actor and subject named."""

    async def count_audit(self) -> int: ...

    # -- 外部送信 disclosure ---------------------------------------------------------------
    async def add_disclosure_entry(self, entry: DisclosureRecipient) -> None:
        """A recipient; an operator entry replaces the current one."""

    async def end_disclosure_entry(self, site_id: int, entry_id: str, at: int) -> bool:
        """False when the site has no such recipient in force."""

    async def disclosure_entries(self, site_id: int) -> list[DisclosureRecipient]:
        """Every entry, in force or ended, oldest first."""

    # -- scoring -----------------------------------------------------------------------
    async def put_scoring_rules(self, site_id: int, document: str, *, actor: str, at: int) -> int:
        """Keep a new version of the site's rules (JSON); return its number."""

    async def latest_scoring_rules(
        self, site_id: int | None = None, *, newer_than: int = -1
    ) -> list[tuple[int, int, str, str, int]]:
        """(site, version, document, actor, created_at) of each site's latest rules (with
        ``newer_than``: every version above it, of every site)."""

    async def score_visitors(
        self,
        rules: Mapping[int, ScoringRules],
        vids: Sequence[str],
        *,
        since: int,
        now: int,
        versions: Mapping[tuple[int, int], ScoringRules] | None = None,
    ) -> int:
        """Score the events from ``since`` on of those visitors linked to a lead; a lead
        not yet rescored under ``rules`` is scored under its own version's."""

    async def score_lead(
        self,
        lead_id: str,
        rules: ScoringRules,
        events: Sequence[Event],
        profile: Any,
        *,
        now: int,
        versions: Mapping[tuple[int, int], ScoringRules] | None = None,
    ) -> bool:
        """Append what the events and profile earn the lead; True when lead.hot was sent."""

    async def settle_score(self, lead_id: str, rules: ScoringRules, now: int) -> bool:
        """Work out the lead's root's standing again (after a merge or an unmerge)."""

    async def lead_score(self, lead_id: str, site_id: int | None = None) -> LeadScore | None: ...

    async def score_ledgers(self, lead_ids: Sequence[str]) -> list[ScoreEntry]:
        """Every ledger entry of these leads, on every site, in the order written."""

    async def scored_leads(
        self, *, site_id: int | None, at_least: float, limit: int
    ) -> list[ScoreState]: ...

    async def add_score_entry(
        self, lead_id: str, entry: ScoreEntry, rules: ScoringRules, now: int
    ) -> bool: ...

    async def leads_on_site(self, site_id: int, *, after: str, limit: int) -> list[str]: ...

    async def count_leads_on_site(self, site_id: int, version: int) -> tuple[int, int]: ...

    async def rescore(
        self,
        lead_ids: Sequence[str],
        rules: ScoringRules,
        profiles: dict[str, Any],
        *,
        now: int,
        dry_run: bool = False,
    ) -> list[Rescored]:
        """Replay the leads' histories under ``rules``; a dry run writes nothing."""

    async def scoring_feed_position(self) -> int: ...

    async def set_scoring_feed_position(self, seq: int) -> None: ...

    # -- the console -------------------------------------------------------------------
    async def add_console_user(self, user: ConsoleUser) -> bool:
        """False when a user with that email (index) exists."""

    async def console_user(self, user_id: str) -> ConsoleUser | None: ...

    async def console_user_by_index(self, index: bytes) -> ConsoleUser | None: ...

    async def console_users(self) -> list[ConsoleUser]: ...

    async def update_console_user(self, user: ConsoleUser, *, end_sessions: bool) -> None: ...

    async def start_console_session(
        self, session: ConsoleSession, *, replaces: bytes | None, stale: int
    ) -> None:
        """Insert ``session``; delete the one it ``replaces`` and those idle since ``stale``."""

    async def console_session(self, token_hash: bytes) -> ConsoleSession | None: ...

    async def touch_console_session(
        self, token_hash: bytes, *, seen_at: int, confirmed_at: int | None = None
    ) -> None: ...

    async def end_console_session(self, token_hash: bytes) -> None: ...

    async def end_console_sessions(self, user_id: str) -> int: ...

    async def signin_failures(self, keys: Sequence[str], *, since: int) -> dict[str, int]:
        """Failed sign-ins per key counted since ``since`` (keys without any left out)."""

    async def note_signin_failure(
        self, keys: Sequence[str], *, at: int, window_start: int
    ) -> None: ...

    async def clear_signin_failures(self, keys: Sequence[str]) -> None: ...

    async def count_events_since(self, at: int, *, sites: Sequence[int] | None = None) -> int:
        """Events at or after ``at`` (on ``sites`` if named)."""

    # -- the console's lead list ---------------------------------------------------------
    async def recent_leads(
        self, *, sites: Sequence[int] | None, before: tuple[int, str] | None = None, limit: int
    ) -> list[LeadRow]:
        """Unmerged leads, the latest changed first (of those linked on ``sites``)."""

    async def leads_with_key(self, kind: str, value: bytes, *, limit: int) -> list[str]:
        """Leads holding this 名寄せ match key."""

    async def score_states(self, lead_ids: Sequence[str]) -> list[ScoreState]: ...

    async def last_seen(
        self, lead_ids: Sequence[str], *, sites: Sequence[int] | None = None
    ) -> dict[str, int]:
        """When each lead's linked browsers were last seen (ms; on ``sites`` if named)."""

    async def recent_visitors(
        self, site_id: int, *, since: int, limit: int
    ) -> list[tuple[str, int, int]]:
        """(vid, last seen, events) of the site's visitors since ``since``, latest first."""

    async def leads_of_visitors(self, vids: Sequence[str], *, at: int) -> dict[str, str]:
        """vid -> the lead it is linked to at ``at``."""

    # -- roll-ups and the dashboard's reads (tables/rollups.py, tables/reports.py) ----------
    rollups_on: bool
    """Whether the collector keeps the roll-ups (``ASHIATO_ROLLUPS``)."""

    async def catch_up_rollups(self, *, limit: int = 5_000) -> int:
        """Count the page views committed since the last catch-up into the roll-ups."""

    async def rollups_ready(self) -> bool:
        """The roll-ups are on, cover every visitor and are caught up (doing so now)."""

    async def expire_rollups(self, site_id: int, before: int) -> None:
        """The roll-ups as purging the site's events before ``before`` (an hour) leaves them."""

    async def rebuild_rollups(self, *, limit: int = 20_000) -> None: ...

    async def readings(
        self,
        site_id: int,
        hours: Sequence[int] | None,
        t0: int,
        t1: int,
        *,
        dims: Sequence[str],
        limit: int,
        campaign: str | None,
        live_since: int,
    ) -> Readings:
        """The dashboard's reads at once: the roll-ups' for the days starting at ``hours``
        (None: none), new and hot leads in ``[t0, t1)`` (of ``campaign``), the live count."""

    async def page_views(
        self, site_id: int, t0: int, t1: int, utm: Sequence[str | None] = ...
    ) -> tuple[list[tuple[Any, ...]], set[tuple[int, str, str]]]:
        """Page views in ``[t0, t1)`` (of visitors with UTM ``utm`` there, if any set)."""

    async def truncate_wal(self) -> bool:
        """Leave no deleted data in a write-ahead log (no-op where there is none)."""


def open_store(url: str) -> Store:
    """Return a Store for ``url``; connections open lazily."""
    if url.startswith("sqlite:///"):
        from tracker.storage.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from tracker.storage.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")
