"""Identification applied: find or create the lead, seal its data, link the visitor.

Three ways in, one rule set: the tag (a form or ``ashiato('identify')``, evidence
``form``), a signed token rendered by the site's backend (``signed``), and the server
API (``api``). All need the visitor's ``marketing`` consent; a site may accept only
signed or API identification. Only signed and API identifications may rewrite a known
lead; an unsigned one fills empty traits at most and is kept as its own record
(``identity.claims``). Change times are the server's clock, never the event's. How the
visitor is linked, and what its visits give the lead's first and last touch, is decided
inside the store's transaction (``identity.stitching``).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from identity import claims, stitching
from identity.resolution import Resolution
from identity.tokens import verify_token
from privacy import consent
from privacy.crypto.primitives import InvalidCiphertext
from privacy.personal import Person, PersonalData, link_ref, person_from_traits
from tracker.drops import DropReason
from tracker.storage import Store
from tracker.storage.records import Event, LeadRow, LinkOutcome, LinkRequest, Site, Submission


@dataclass(frozen=True, slots=True)
class Identified:
    lead: LeadRow
    created: bool
    outcome: LinkOutcome


class Identity:
    def __init__(
        self,
        store: Store,
        personal: PersonalData,
        *,
        site_secret: Callable[[Site], Any],
        now: Callable[[], float] = time.time,
        matching: Resolution | None = None,
    ) -> None:
        self.store = store
        self.personal = personal
        self._site_secret = site_secret  # async: Site -> bytes | None (opened secret)
        self._now = now
        self.matching = matching  # 名寄せ: keys follow the traits

    async def from_browser(
        self,
        site: Site,
        event: Event,
        traits: dict[str, str],
        token: str | None,
        full_ip: str | None,
    ) -> Identified | DropReason:
        """An identify beacon: the Identified result, or the reason it was dropped."""
        evidence = "form"
        if token is not None or site.settings.identify == "signed":
            secret = await self._site_secret(site)
            valid = (
                token is not None
                and secret is not None
                and verify_token(secret, site.key, traits["email"], token, now=int(self._now()))
            )
            if not valid:
                return DropReason.UNSIGNED_IDENTIFY
            evidence = "signed"
        return await self.identify(
            site, event.vid, traits, evidence=evidence, at=event.at, full_ip=full_ip,
            form=event.name,
        )  # fmt: skip

    async def identify(
        self,
        site: Site,
        vid: str,
        traits: dict[str, str],
        *,
        evidence: str,
        at: int,
        full_ip: str | None = None,
        form: str | None = None,
    ) -> Identified | DropReason:
        """``at``: the identification's event time (where the link begins); the lead's
        change times come from the server's clock (``now``)."""
        state = await self.store.consent_state(site.id, vid)
        if not consent.allows_marketing(site.consent_mode, state):
            return DropReason.NO_MARKETING_CONSENT
        person, now = person_from_traits(traits), int(self._now() * 1000)
        lead, created, filled = await self._lead_for(person, evidence, now)
        if not claims.is_trusted(evidence):
            draft = Submission("sb_" + secrets.token_hex(12), lead.id, vid, site.id, form, at, b"")
            await self._keep_claim(lead, draft, claims.record(traits, filled))
        ip = await self.personal.seal_ip(lead, link_ref(vid, at), full_ip)
        request = LinkRequest(vid, lead.id, site.id, evidence, at, ip, changed_at=now)
        outcome = await self.store.link_visitor(request, stitching.Rules())
        if self.matching is not None and (created or filled):
            await (self.matching.refresh(lead, person) if created
                   else self.matching.refresh_id(lead.id))  # fmt: skip
        return Identified(lead, created, outcome)

    async def link(
        self, site: Site, vid: str, lead_id: str, *, evidence: str, at: int
    ) -> LinkOutcome | DropReason:
        """Link a visitor to a known lead (a server-side alias), under the same consent
        rule as an identification."""
        state = await self.store.consent_state(site.id, vid)
        if not consent.allows_marketing(site.consent_mode, state):
            return DropReason.NO_MARKETING_CONSENT
        now = int(self._now() * 1000)
        request = LinkRequest(vid, lead_id, site.id, evidence, at, None, changed_at=now)
        return await self.store.link_visitor(request, stitching.Rules())

    async def lead_of(self, vid: str) -> str | None:
        """The lead the visitor's open link stands for now (after merges), if any."""
        links = await self.store.links_of_visitor(vid)
        current = next((k for k in links if k.ended_at is None), None)
        return None if current is None else await self.store.resolve_lead(current.lead_id)

    async def _lead_for(
        self, person: Person, evidence: str, now: int
    ) -> tuple[LeadRow, bool, list[str]]:
        """The lead, whether this created it, and the traits this identification set."""
        existing = await self.store.lead_by_index(self.personal.email_index(person.email))
        if existing is None:
            draft = await self.personal.new_lead(person, now=now)
            lead, created = await self.store.create_lead(draft)
            if not created:  # another collector created it first: use theirs
                await self.personal.destroy(draft)
            else:
                return lead, True, claims.changed(Person(email=person.email), person)
            existing = lead
        return existing, False, await self._update(existing, person, evidence, now)

    async def _update(self, lead: LeadRow, person: Person, evidence: str, now: int) -> list[str]:
        """Apply the claim as ``identity.claims`` allows. An untrusted fill is written only
        if the traits are still as read (compare-and-set), so it never overwrites a value
        written meanwhile; after such a race it is worked out again from the new values."""
        for _ in range(3):
            try:
                current = await self.personal.read(lead)
            except InvalidCiphertext:
                return []  # an erased lead's leftovers: never resurrect data into it
            wanted = claims.apply(current, _traits(person), evidence=evidence)
            columns = await self.personal.changed_columns(lead, wanted)
            if not columns:
                return []
            expected = (
                None if claims.is_trusted(evidence) else {c: getattr(lead, c) for c in columns}
            )
            if await self.store.update_lead_fields(lead.id, columns, now, expected=expected):
                return claims.changed(current, wanted)
            fresh = await self.store.lead(lead.id)
            if fresh is None:
                return []
            lead = fresh
        return []

    async def _keep_claim(self, lead: LeadRow, draft: Submission, claim: dict[str, Any]) -> None:
        """The unsigned submission's own record, sealed under the lead's data key."""
        try:
            sealed = await self.personal.seal_claim(lead, draft.id, claim)
        except InvalidCiphertext:
            return  # an erased lead's leftovers: nothing is kept about them
        await self.store.add_submission(dataclasses.replace(draft, claim=sealed))


def _traits(person: Person) -> dict[str, str]:
    traits = {
        k: v
        for k, v in (("name", person.name), ("company", person.company), ("phone", person.phone))
        if v
    }
    return {**traits, **person.fields}
