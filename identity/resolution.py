"""名寄せ applied: match keys kept up to date, suggestions listed, pairs dismissed.

A lead's keys are computed from its decrypted traits (``identity.matchkeys``), keyed by
HMAC (``PersonalData.match_index``) and stored whole in place of the old ones, whenever
an identification creates the lead or changes its traits. A trait update deletes the
lead's keys in its own transaction, so a lead's keys are current or absent. Leads
without keys of the current normaliser version (created before this feature, or left
so by a crash between the two writes) are keyed by ``backfill``: run at every server
start, and by ``ashiato leads match-keys``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from identity import duplicates, matchkeys
from identity.duplicates import Confidence, Suggestion
from privacy.crypto.primitives import InvalidCiphertext
from privacy.personal import Person, PersonalData
from tracker.errors import Conflict, NotFound
from tracker.storage import Store
from tracker.storage.records import LeadRow

MAX_SHARED = 50
"""A key held by more leads than this (a big company's name, a switchboard number)
proposes no pair by itself; it still counts for pairs found by another key."""
MAX_CANDIDATES = 50_000
"""Most candidate pairs one listing looks at."""


def _no_progress(done: int, total: int) -> None:
    pass


class Resolution:
    def __init__(
        self, store: Store, personal: PersonalData, *, now: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.personal = personal
        self._now = now

    async def refresh(self, lead: LeadRow, person: Person | None = None) -> bool:
        """Compute and store the lead's keys from its traits (``person``: already
        decrypted); False when its traits changed meanwhile or it cannot be read."""
        try:
            person = person or await self.personal.read(lead)
        except InvalidCiphertext:
            return False  # an erased lead's leftovers: nothing to key
        keys = [(kind.value, self.personal.match_index(kind, value))
                for kind, value in sorted(matchkeys.match_values(person))]  # fmt: skip
        sealed = {"email": lead.email, "name": lead.name, "company": lead.company,
                  "phone": lead.phone, "fields": lead.fields}  # fmt: skip
        return await self.store.set_match_keys(
            lead.id, keys, version=matchkeys.VERSION, sealed=sealed
        )

    async def refresh_id(self, lead_id: str) -> bool:
        lead = await self.store.lead(lead_id)
        return lead is not None and await self.refresh(lead)

    async def pending(self) -> int:
        """Leads without keys of the current version."""
        return await self.store.count_without_keys(matchkeys.VERSION)

    async def backfill(
        self, *, batch: int = 200, progress: Callable[[int, int], None] = _no_progress
    ) -> int:
        """Key every lead that lacks keys of the current version; how many were keyed."""
        total, done, keyed, after = await self.pending(), 0, 0, ""
        progress(0, total)
        while leads := await self.store.leads_without_keys(
            matchkeys.VERSION, after=after, limit=batch
        ):
            for lead in leads:
                keyed += await self.refresh(lead)
            done += len(leads)
            after = leads[-1].id
            progress(min(done, max(total, done)), max(total, done))
        return keyed

    async def suggestions(self, *, least: Confidence = Confidence.POSSIBLE) -> list[Suggestion]:
        found = await self.store.match_candidates(
            [k.value for k in duplicates.pairing_kinds(least)],
            max_shared=MAX_SHARED,
            limit=MAX_CANDIDATES,
        )
        return duplicates.suggest(found, least=least)

    async def dismiss(self, lead: str, other: str, *, actor: str) -> tuple[str, str, int]:
        """Mark the two leads (as they stand now, after merges) "not the same"; the pair
        recorded, and when. NotFound for an unknown lead, Conflict for one person."""
        first = await self.store.resolve_lead(lead)
        second = await self.store.resolve_lead(other)
        if first is None or second is None:
            raise NotFound("lead not found")
        if first == second:
            raise Conflict("those are one lead (merged): nothing to dismiss")
        at = int(self._now() * 1000)
        if not await self.store.dismiss_pair(first, second, actor=actor, at=at):
            raise NotFound("lead not found")
        first, second = sorted((first, second))
        return first, second, at  # as recorded: the smaller id first
