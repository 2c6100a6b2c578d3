"""Scoring applied: rules kept per site, events scored right after their commit, leads
scored when identified, merged or changed, rescoring, manual adjustments.

Ingest never waits on scoring: the writer hands each committed batch to ``notice`` (a
list append), and a background task, every ``poll_interval``, scores the linked
visitors of what was committed since, in one transaction of its own (one commit for
many of ingest's). Identifications, trait changes, merges and unmerges reach the scorer
through the change feed, from a position kept in the database, so a restart or a
second collector process misses nothing (scoring an event twice adds nothing: the
ledger knows what it holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from privacy.crypto.primitives import InvalidCiphertext
from privacy.personal import PersonalData
from scoring.document import Document, from_data, to_data
from scoring.matching import Profile
from scoring.rules import RuleSet
from tracker.errors import NotFound, StorageError
from tracker.storage import Store
from tracker.storage.records import Event, LeadRow, ScoreEntry, WriteItem

log = logging.getLogger("ashiato.scoring")

FEED_PAGE = 500
MAX_PENDING = 200_000
RULES_TTL_S = 5.0
HISTORY_LIMIT = 1_000_000
PROFILE_KINDS = frozenset({"created", "identified", "updated"})
SETTLE_KINDS = frozenset({"merged", "unmerged"})


@dataclass(frozen=True, slots=True)
class RulesInfo:
    rules: RuleSet
    actor: str
    created_at: int


class Scoring:
    def __init__(
        self,
        store: Store,
        personal: PersonalData,
        *,
        poll_interval: float = 0.25,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.personal = store, personal
        self.poll_interval = poll_interval
        self._now = now
        self._rules: dict[int, RulesInfo] = {}
        self._versions: dict[tuple[int, int], RuleSet] = {}
        self._loaded_at = -RULES_TTL_S
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._feed: int | None = None

    # -- rules -------------------------------------------------------------------------
    async def refresh(self) -> dict[int, RulesInfo]:
        """The sites' current rules, and every older version (compiled once each: a lead
        not yet rescored is scored under the version its ledger is under)."""
        for site, version, doc, _, _ in await self.store.latest_scoring_rules(newer_than=0):
            if (site, version) not in self._versions:
                rules = RuleSet(from_data(orjson.loads(doc)), site_id=site, version=version)
                self._versions[site, version] = rules
        found = await self.store.latest_scoring_rules()
        self._rules = {
            site: RulesInfo(self._versions[site, version], actor, created)
            for site, version, _, actor, created in found
            if (site, version) in self._versions
        }
        self._loaded_at = time.monotonic()
        return self._rules

    async def rules(self, site_id: int) -> RulesInfo | None:
        if time.monotonic() - self._loaded_at > RULES_TTL_S:
            await self.refresh()
        return self._rules.get(site_id)

    async def put_rules(self, site_id: int, doc: Document, *, actor: str) -> int:
        """Keep ``doc`` as the site's rules from now on; return its version. Leads scored
        under older rules keep their scores until ``rescore`` replays them."""
        text = orjson.dumps(to_data(doc)).decode()
        version = await self.store.put_scoring_rules(site_id, text, actor=actor, at=self.ms())
        await self.refresh()
        self._wake.set()
        return version

    # -- after ingest ------------------------------------------------------------------
    def notice(self, items: Sequence[WriteItem]) -> None:
        """A committed batch (called by the writer; returns at once)."""
        if not self._rules:
            return
        rules = self._rules
        # No wake-up: a round every poll_interval gathers many batches into one scoring
        # transaction (one commit), instead of a commit beside each of ingest's.
        self._pending.extend(i for i in items if isinstance(i, Event) and i.site_id in rules)
        if len(self._pending) > MAX_PENDING:  # the database is away: keep memory bounded
            log.warning("scoring behind: events dropped from its queue (rescore heals)",
                        extra={"dropped": len(self._pending) - MAX_PENDING})  # fmt: skip
            del self._pending[:-MAX_PENDING]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ashiato-scoring")

    async def close(self) -> None:
        """Stop, after scoring what the last batches committed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(Exception):  # the database may be away: rescore heals
                await self.catch_up()

    async def _run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except StorageError as exc:  # the database is away: say so briefly; it resumes
                log.warning("scoring round skipped", extra={"cause": str(exc)})
            except Exception:  # a bug must not end scoring either
                log.exception("scoring round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def catch_up(self) -> None:
        """Score what was committed, then follow the change feed to its end."""
        if time.monotonic() - self._loaded_at > RULES_TTL_S:
            await self.refresh()
        if not self._rules:
            return
        pending, self._pending = self._pending, []
        if pending:
            rules = {site: info.rules for site, info in self._rules.items()}
            vids = list({e.vid for e in pending})
            await self.store.score_visitors(rules, vids, since=min(e.at for e in pending),
                                            now=self.ms(), versions=self._versions)  # fmt: skip
        while await self._follow_feed():
            pass

    async def _follow_feed(self) -> bool:
        if self._feed is None:
            self._feed = await self.store.scoring_feed_position()
        changes = await self.store.changes_page(after=self._feed, limit=FEED_PAGE)
        for change in changes:
            if change.kind in PROFILE_KINDS:
                await self.score_family(change.lead_id)
            elif change.kind in SETTLE_KINDS:
                for info in self._rules.values():
                    await self.store.settle_score(change.lead_id, info.rules, self.ms())
        if changes:
            self._feed = changes[-1].seq
            await self.store.set_scoring_feed_position(self._feed)
        return len(changes) == FEED_PAGE

    async def score_family(self, lead_id: str) -> None:
        """Score every event the lead (and the leads merged into it) has, and its profile."""
        root = await self.store.resolve_lead(lead_id)
        if root is None:
            return  # erased
        for member in await self.store.lead_family(root):
            links = await self.store.links_of_leads([member])
            events = await self.store.link_events(links, limit=HISTORY_LIMIT)
            lead = await self.store.lead(member)
            profile = await self.profile(lead) if lead is not None and member == root else None
            for info in self._rules.values():
                await self.store.score_lead(member, info.rules, events, profile, now=self.ms(),
                                            versions=self._versions)  # fmt: skip

    async def profile(self, lead: LeadRow) -> Profile | None:
        """The lead's traits in plaintext (in memory only) and its touches."""
        try:
            person = await self.personal.read(lead)
        except InvalidCiphertext:
            return None  # erased meanwhile
        traits = {k: v for k, v in person.fields.items() if isinstance(v, str)}
        for name in ("name", "company", "phone"):
            if getattr(person, name):
                traits[name] = getattr(person, name)
        traits["email_domain"] = person.email.rpartition("@")[2].lower()
        return Profile(traits, lead.first_touch, lead.last_touch)

    # -- by hand -----------------------------------------------------------------------
    async def adjust(
        self, lead_id: str, site_id: int, *, points: int, reason: str, actor: str, axis: str
    ) -> bool:
        """A manual ledger entry (who and why); True if it sent lead.hot."""
        info = await self.rules(site_id)
        if info is None:
            raise NotFound("the site has no scoring rules")
        at = self.ms()
        source = f"manual:{secrets.token_hex(8)}"
        entry = ScoreEntry("manual", axis, "manual", source, points, at, reason, None, 0, actor)
        return await self.store.add_score_entry(lead_id, entry, info.rules, at)

    def ms(self) -> int:
        return int(self._now() * 1000)
