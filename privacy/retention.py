"""Retention: nothing is kept forever by default.

Data classes and their default periods (a site may override each in its settings):

| class | default | what goes |
|---|---|---|
| ``events`` | 13 months | raw events older than that |
| ``visitors`` | 13 months after last activity | never-identified visitors: events, consent state |
| ``leads`` | 25 months without activity | the whole lead, erased as on request (keys shredded) |
| ``receipts`` | 37 months | consent receipts that are no one's current state |

Receipts are proof: they outlive the 13 months of tracking they justify by two years.
Server-side senders' message ids (kept to store a resent message once) go after
``SEEN_MESSAGES_DAYS``; they are hashes, not data about anyone, so they are not counted.

Deletion runs in small batches, each a short transaction, with a pause between them,
so the collector's commits interleave and ingest keeps flowing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from privacy.audit import AuditLog
from privacy.dsr import DataSubjectRequests
from tracker.errors import StorageError
from tracker.storage import Store
from tracker.storage.records import Site

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
CLASSES = ("events", "visitors", "leads", "receipts")
DEFAULT_DAYS = {"events": 395, "visitors": 395, "leads": 760, "receipts": 1126}
SEEN_MESSAGES_DAYS = 30
"""Far longer than an SDK retries or a queue replays; a message sent again later is new."""
TRIES = 5
"""Tries of one purge step that finds the database busy past its own wait (SQLite's busy
timeout, while a server's ingest keeps taking the write lock): a step deletes at most a
batch of rows that are still expired, so trying it again is safe; the pause doubles."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Policy:
    days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DAYS))

    def for_site(self, site: Site) -> dict[str, int]:
        return self.days | {k: v for k, v in site.settings.retention_days if k in CLASSES}


@dataclass(slots=True)
class Report:
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    seconds: float = 0.0


def events_cutoff(now: int, days: int) -> int:
    """Events before this go: ``days`` ago, down to a whole hour (the roll-ups' buckets
    expire whole, so an event is kept at most an hour longer)."""
    cutoff = now - days * DAY_MS
    return cutoff - cutoff % HOUR_MS


class Retention:
    def __init__(
        self,
        store: Store,
        requests: DataSubjectRequests,
        audit: AuditLog,
        policy: Policy,
        *,
        batch: int = 200,
        pause: float = 0.005,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.requests, self.audit, self.policy = store, requests, audit, policy
        self.batch, self.pause = batch, pause
        self._now = now

    async def run(
        self, *, dry_run: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> Report:
        started = time.monotonic()
        report = Report(dry_run)
        now = int(self._now() * 1000)
        sites = await self.store.list_sites()
        # Whole stored partitions of events (PostgreSQL's months) may go only when they
        # are past every site's cutoff: they hold all sites' events.
        cutoffs = {s.id: events_cutoff(now, self.policy.for_site(s)["events"]) for s in sites}
        floor = min(cutoffs.values(), default=0)
        if not dry_run:  # before any purge: the roll-ups as the purges will leave them
            for site in sites:
                await self._patiently(partial(self.store.expire_rollups, site.id, cutoffs[site.id]))
        for site in sites:
            days = self.policy.for_site(site)
            report.counts["events"] += await self._events(
                site, cutoffs[site.id], floor, dry_run, progress
            )
            report.counts["visitors"] += await self._visitors(
                site, now - days["visitors"] * DAY_MS, dry_run
            )
            report.counts["receipts"] += await self._receipts(
                site, now - days["receipts"] * DAY_MS, dry_run
            )
        report.counts["leads"] = await self._leads(
            now - self.policy.days["leads"] * DAY_MS, dry_run
        )
        if not dry_run:
            before = now - SEEN_MESSAGES_DAYS * DAY_MS
            while await self._patiently(
                partial(self.store.purge_seen_messages, before, limit=self.batch)
            ):
                await asyncio.sleep(self.pause)
        report.seconds = round(time.monotonic() - started, 3)
        if not dry_run:
            # No WAL truncation here (an erasure does one): a TRUNCATE checkpoint of the
            # pages these deletes touched would stall ingest; the background checkpoints
            # fold them in without blocking.
            await self.audit.record("system", "retention.run", "*", dict(report.counts))
        return report

    async def _patiently(self, step: Callable[[], Awaitable[T]]) -> T:
        """``step``, tried again after a pause while the database stays busy (``TRIES``)."""
        for attempt in range(1, TRIES):
            try:
                return await step()
            except StorageError:
                await asyncio.sleep(self.pause * 100 * 2**attempt)  # 1, 2, 4, 8 s by default
        return await step()

    async def _events(
        self,
        site: Site,
        before: int,
        floor: int,
        dry_run: bool,
        progress: Callable[[int, int], None] | None,
    ) -> int:
        expected = await self.store.count_events_before(site.id, before)
        if dry_run or not expected:
            return expected
        done = await self.store.drop_expired_partitions(floor)
        purge = partial(self.store.purge_events, site.id, before, limit=self.batch)
        while deleted := await self._patiently(purge):
            done += deleted
            if progress is not None:
                progress(done, max(expected, done))
            await asyncio.sleep(self.pause)  # let the collector's commits through
        return done

    async def _visitors(self, site: Site, before: int, dry_run: bool) -> int:
        vids = await self.store.idle_visitors(site.id, before, limit=1_000_000)
        if dry_run:
            return len(vids)
        for start in range(0, len(vids), self.batch):
            chunk = vids[start : start + self.batch]
            await self._patiently(partial(self.store.purge_visitor_state, site.id, chunk))
            await asyncio.sleep(self.pause)
        return len(vids)

    async def _receipts(self, site: Site, before: int, dry_run: bool) -> int:
        if dry_run:
            return await self.store.count_receipts_before(site.id, before)
        total = 0
        purge = partial(self.store.purge_receipts, site.id, before, limit=self.batch)
        while deleted := await self._patiently(purge):
            total += deleted
            await asyncio.sleep(self.pause)
        return total

    async def _leads(self, before: int, dry_run: bool) -> int:
        lead_ids = await self.store.inactive_leads(before, limit=100_000)
        if dry_run:
            return len(lead_ids)
        for lead_id in lead_ids:
            subject = await self.requests.find(lead=lead_id)
            await self.requests.erase(subject, actor="system:retention")
            await asyncio.sleep(self.pause)
        return len(lead_ids)
