"""名寄せ suggestions: which pairs of leads are probably one person, and how sure.

Pure rules over match keys (``identity.matchkeys``, stored as blind indexes): two leads
*match* on a kind when they share a key of it, and *differ* on it when both have keys
of it and share none.

* ``certain``: the same mailbox (email); or the same phone number, unless their names
  differ (a company's switchboard is shared by its people);
* ``likely``: the same name (or reading) and the same company — a company whose email
  domains differ is another company (``株式会社A`` and ``A株式会社`` are two) — or the
  same company email domain;
* ``possible``: the same name only (同姓同名, or someone who changed jobs), the same
  reading with names written differently (an IME slip: 伊藤/伊東), or the same company
  name when no name says otherwise (the same email domain alone is every colleague).

Different people at one company (their names differ) are not proposed at all. A pair
marked "not the same" stays dismissed, also once either lead is merged into another
(its person is then still not the other one). Merged leads count as the lead they were
merged into, with all their keys.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Mapping, Set
from dataclasses import dataclass

from identity.matchkeys import Kind
from tracker.storage.records import MatchCandidates

MAX_MERGE_DEPTH = 64
PAIRING_KINDS = (Kind.EMAIL, Kind.PHONE, Kind.NAME, Kind.KANA, Kind.COMPANY)
"""Kinds a pair is found by, strongest first (an email domain alone is every colleague:
it only adds to a pair found by another kind)."""


class Confidence(enum.StrEnum):
    CERTAIN = "certain"
    LIKELY = "likely"
    POSSIBLE = "possible"

    @property
    def rank(self) -> int:
        return list(Confidence).index(self)


KeySets = Mapping[str, Set[bytes]]
"""One lead's match keys: kind -> its values."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    lead: str
    """The older lead (the natural one to merge the other into)."""
    other: str
    confidence: Confidence
    matched: tuple[str, ...]
    differs: tuple[str, ...]


def compare(a: KeySets, b: KeySets) -> tuple[set[str], set[str]]:
    """(kinds both share a key of, kinds both have but share none of)."""
    matched = {kind for kind in a.keys() & b.keys() if a[kind] & b[kind]}
    differs = {kind for kind in a.keys() & b.keys() if a[kind] and b[kind]} - matched
    return matched, differs


def judge(matched: Set[str], differs: Set[str]) -> Confidence | None:
    """How sure a pair with these matching and differing kinds is one person (None: not
    proposed). The module's docstring says the rules in words."""
    same_name = Kind.NAME in matched or (Kind.KANA in matched and Kind.NAME not in differs)
    names_differ = not same_name and bool({Kind.NAME, Kind.KANA} & differs)
    same_company = Kind.DOMAIN in matched or (
        Kind.COMPANY in matched and Kind.DOMAIN not in differs
    )
    if Kind.EMAIL in matched:
        return Confidence.CERTAIN
    if Kind.PHONE in matched:
        return Confidence.POSSIBLE if names_differ else Confidence.CERTAIN
    if same_name:
        return Confidence.LIKELY if same_company else Confidence.POSSIBLE
    if Kind.KANA in matched or (Kind.COMPANY in matched and same_company and not names_differ):
        return Confidence.POSSIBLE  # (the same email domain alone: every colleague)
    return None


def pairing_kinds(least: Confidence) -> tuple[Kind, ...]:
    """The kinds a pair at least ``least`` sure must share one of (by ``judge``): an
    email or a phone for ``certain``, also a name or reading for ``likely``."""
    if least is Confidence.CERTAIN:
        return PAIRING_KINDS[:2]
    if least is Confidence.LIKELY:
        return PAIRING_KINDS[:4]
    return PAIRING_KINDS


def suggest(found: MatchCandidates, *, least: Confidence = Confidence.POSSIBLE) -> list[Suggestion]:
    """The suggested pairs, most certain first, at least ``least`` sure."""
    roots = {lead_id: _root(lead_id, found.leads) for lead_id in found.leads}
    keys: dict[str, dict[str, set[bytes]]] = defaultdict(lambda: defaultdict(set))
    for lead_id, kind, value in found.keys:
        if (root := roots.get(lead_id)) is not None:
            keys[root][kind].add(value)
    dismissed = {frozenset(_roots(pair, roots)) for pair in found.dismissed}
    pairs = {_roots(pair, roots) for pair in found.pairs} - {("", "")}
    suggestions = []
    for pair in pairs:
        if frozenset(pair) in dismissed:
            continue
        first, second = sorted(pair, key=lambda r: (found.leads[r][1], r))
        matched, differs = compare(keys[first], keys[second])
        confidence = judge(matched, differs)
        if confidence is not None and confidence.rank <= least.rank:
            suggestions.append(Suggestion(first, second, confidence, _ordered(matched),
                                          _ordered(differs)))  # fmt: skip
    return sorted(suggestions, key=lambda s: (s.confidence.rank, s.lead, s.other))


def _roots(pair: tuple[str, str], roots: Mapping[str, str | None]) -> tuple[str, str]:
    """The two leads the pair stands as now; ("", "") when they are one, or one is gone."""
    first, second = roots.get(pair[0]), roots.get(pair[1])
    if first is None or second is None or first == second:
        return "", ""
    return first, second


def _root(lead_id: str, leads: Mapping[str, tuple[str | None, int]]) -> str | None:
    """The lead ``lead_id`` stands as now (after merges); None if it is gone."""
    current = lead_id
    for _ in range(MAX_MERGE_DEPTH):
        if current not in leads:
            return None
        into = leads[current][0]
        if into is None:
            return current
        current = into
    return None


def _ordered(kinds: Set[str]) -> tuple[str, ...]:
    return tuple(kind for kind in Kind if kind in kinds)
