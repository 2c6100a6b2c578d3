"""Site limits: an API key or a console user may be limited to some sites, and then
sees nothing of the others (an agency runs many clients' sites on one ashiato).

What belongs to a site:
* an event, a consent receipt, a link (an identification) and a form submission carry
  the site they happened on;
* a visitor is seen through its events, links and receipts on the allowed sites only;
* a lead is on a site when one of its links (its own or a merged lead's) or one of the
  events those links give it is on that site (``Store.lead_sites``). A limited reader
  sees a lead on an allowed site, and of it only what happened on allowed sites; its
  first and last touch are taken again from those events when it is on other sites too.

A lead, visitor or request outside the limit is not found (404), exactly as an unknown
id: the answer tells nothing of what exists elsewhere. Administration (sites, keys,
webhooks, users) is every site's: admin keys and users are never limited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from identity import touch
from privacy.dsr import Subject
from tracker.errors import Invalid, NotFound
from tracker.storage import Store
from tracker.storage.records import Change, LeadRow, Link, Touch


class OnSite(Protocol):
    @property
    def site_id(self) -> int: ...


T = TypeVar("T", bound=OnSite)
TOUCH_EVENTS = 5000
"""How many events of a link its touches are looked for in (as the store does)."""
UNLIMITED_ROLES = ("admin",)
"""Roles that manage every site (sites, keys, webhooks, users): never limited."""


@dataclass(frozen=True, slots=True)
class SiteScope:
    """Every site (``sites`` None), or only these site ids."""

    sites: frozenset[int] | None = None

    @classmethod
    def of(cls, sites: Iterable[int] | None) -> SiteScope:
        return cls(None if sites is None else frozenset(sites))

    @property
    def limited(self) -> bool:
        return self.sites is not None

    @property
    def ids(self) -> list[int] | None:
        """The allowed site ids for a store query (None: no condition)."""
        return None if self.sites is None else sorted(self.sites)

    def allows(self, site_id: int | None) -> bool:
        return self.sites is None or (site_id is not None and site_id in self.sites)

    def only(self, items: Iterable[T]) -> list[T]:
        """The items that happened on an allowed site."""
        items = list(items)
        return items if self.sites is None else [i for i in items if i.site_id in self.sites]

    def sees(self, lead_sites: Collection[int]) -> bool:
        """Whether a lead on ``lead_sites`` is visible."""
        return self.sites is None or not self.sites.isdisjoint(lead_sites)


EVERY_SITE = SiteScope()


def limit_for(role_or_scopes: str | Sequence[str], sites: Sequence[int]) -> tuple[int, ...] | None:
    """The site limit to store for a new key (its scopes) or user (their role): None for
    no sites named; refused for admin, which manages every site."""
    if not sites:
        return None
    named = [role_or_scopes] if isinstance(role_or_scopes, str) else list(role_or_scopes)
    if any(n in UNLIMITED_ROLES for n in named):
        raise Invalid("admin manages every site and cannot be limited to some: leave out --site")
    return tuple(sorted(set(sites)))


async def visible_leads(store: Store, scope: SiteScope, lead_ids: Sequence[str]) -> set[str]:
    """Which of these leads the scope sees (all of them when it is not limited)."""
    return set(await seen_sites(store, scope, lead_ids))


async def seen_sites(
    store: Store, scope: SiteScope, lead_ids: Sequence[str]
) -> dict[str, frozenset[int]]:
    """The leads the scope sees, each with the sites it is on (for ``touches``); when it
    is not limited, every lead, its sites not read."""
    if not scope.limited:
        return dict.fromkeys(lead_ids, frozenset())
    found = await store.lead_sites(lead_ids)
    return {lead_id: sites for lead_id, sites in found.items() if scope.sees(sites)}


async def sees_lead(store: Store, scope: SiteScope, lead_id: str) -> bool:
    return lead_id in await visible_leads(store, scope, [lead_id])


async def touches(
    store: Store, scope: SiteScope, lead: LeadRow, on: Collection[int] | None = None
) -> tuple[Touch | None, ...]:
    """The lead's first and last touch as the scope sees them: the stored ones when the
    lead is on allowed sites only (``on``: its sites, if already read), else taken again
    from the allowed sites' page views (``identity.touch``, the rules the store applies
    when it links)."""
    first, last = lead.first_touch, lead.last_touch
    if not scope.limited:
        return first, last
    if on is None:
        on = (await store.lead_sites([lead.id])).get(lead.id, frozenset())
    sites = frozenset(on)
    assert scope.sites is not None
    if sites <= scope.sites:
        return first, last
    first = last = None
    for link in await _links(store, lead.id):
        events = await store.link_events([link], limit=TOUCH_EVENTS, sites=scope.ids)
        found = touch.touches(events, link.valid_from)
        if found is not None:
            first, last = touch.fold(first, last, found)
    return first, last


async def _links(store: Store, lead_id: str) -> list[Link]:
    return await store.links_of_leads(await store.lead_family(lead_id))


async def visible_changes(
    store: Store, scope: SiteScope, changes: Sequence[Change]
) -> list[Change]:
    """The change-feed rows of leads the scope sees (each row's lead with the leads merged
    into it: a lead merged since into one the scope sees stays hidden when it was another
    site's). Tombstones (``erased``) go to every reader: the lead is gone, with what told
    its sites, and a copy a client holds must go too; the id names no one any more."""
    if not scope.limited:
        return list(changes)
    named = sorted({c.lead_id for c in changes if c.kind != "erased"})
    seen = await visible_leads(store, scope, named)
    return [c for c in changes if c.kind == "erased" or c.lead_id in seen]


async def subject_in(store: Store, scope: SiteScope, subject: Subject) -> Subject:
    """The data subject as the scope sees it (the leads it sees, their touches on its
    sites); not found, as an unknown person, when it sees none of them."""
    if not scope.limited:
        return subject
    if not subject.leads:
        if not await _sees_visitor(store, scope, subject.ref):
            raise NotFound("no data is held about that subject")
        return subject
    if not await sees_lead(store, scope, subject.ref):
        raise NotFound("no data is held about that subject")
    seen = await visible_leads(store, scope, [r.id for r in subject.leads])
    leads = []
    for row in subject.leads:
        if row.id in seen or row.id == subject.ref:
            first, last = await touches(store, scope, row)
            leads.append(dataclasses.replace(row, first_touch=first, last_touch=last))
    return dataclasses.replace(subject, leads=tuple(leads))


async def sees_request(store: Store, scope: SiteScope, subject_ref: str) -> bool:
    """Whether a data-subject request (filed under a lead or visitor id) is the scope's:
    its subject is still there and seen."""
    if not scope.limited:
        return True
    if subject_ref.startswith("ld_"):
        root = await store.resolve_lead(subject_ref)
        return root is not None and await sees_lead(store, scope, root)
    return await _sees_visitor(store, scope, subject_ref)


async def _sees_visitor(store: Store, scope: SiteScope, vid: str) -> bool:
    """An anonymous visitor is seen through its events or receipts on allowed sites."""
    if await store.visitor_events(vid, limit=1, sites=scope.ids):
        return True
    return bool(scope.only(await store.consent_receipts_of([vid])))


async def site_ids(store: Store, keys: Sequence[str]) -> tuple[int, ...]:
    """The ids of the sites named by key (``--site``, a console form); an unknown or
    removed site is refused."""
    known = {s.key: s.id for s in await store.list_sites() if not s.settings.removed_at}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise Invalid(f"unknown site {unknown[0]!r}")
    return tuple(sorted({known[k] for k in keys}))


async def site_keys_of(store: Store, ids: Sequence[int] | None) -> list[str] | None:
    """The keys of a stored limit's sites (None: every site), for people and scripts."""
    if ids is None:
        return None
    keys = {s.id: s.key for s in await store.list_sites()}
    return [keys.get(i, str(i)) for i in ids]
