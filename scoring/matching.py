"""Rules compiled for matching: globs become regexes once, text is folded once.

An event is matched as a ``Fact`` (the parts of a stored event a rule can look at); a
lead as a ``Profile`` (its traits, in plaintext in memory only, and its touches).
Trait words are compared NFKC-folded and case-folded, so ``ＣＥＯ``, ``ceo`` and ``CEO``
are one word, as are full- and half-width katakana.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scoring.document import Rule
from tracker.storage.records import Event, Touch
from tracker.urls import host_of, path_of


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def glob(pattern: str | None) -> re.Pattern[str] | None:
    return None if pattern is None else re.compile(fnmatch.translate(pattern), re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Fact:
    """One stored event as the rules see it."""

    source: str
    """``event:<id>``: the ledger's reference to it."""
    at: int
    order: int
    """The event's id: events of one time are taken in storage order."""
    type: str
    path: str
    name: str
    object: str
    """What ``once_per_object`` counts once: the asset's URL (downloads) or the page."""
    props: Mapping[str, Any]
    utm_source: str
    utm_medium: str
    utm_campaign: str
    referrer_host: str

    @classmethod
    def of(cls, event: Event) -> Fact:
        props = event.props or {}
        path = path_of(event.url)
        asset = props.get("url") if isinstance(props.get("url"), str) else None
        return cls(
            f"event:{event.id}", event.at, event.id or 0, event.type, path, event.name or "",
            asset or path, props, event.utm_source or "", event.utm_medium or "",
            event.utm_campaign or "", host_of(event.referrer),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    """A lead as trait and touch rules see it (plaintext, in memory only)."""

    traits: Mapping[str, str] = field(default_factory=dict)
    first_touch: Touch | None = None
    last_touch: Touch | None = None


@dataclass(frozen=True, slots=True)
class Matcher:
    rule: Rule
    path: re.Pattern[str] | None
    name: re.Pattern[str] | None
    utm: tuple[tuple[str, re.Pattern[str]], ...]
    referrer_host: re.Pattern[str] | None
    words_in: frozenset[str] | None
    words_not_in: frozenset[str] | None
    contains: tuple[str, ...] | None

    @classmethod
    def of(cls, rule: Rule) -> Matcher:
        w = rule.when
        utm = tuple(
            (k, p) for k in ("utm_source", "utm_medium", "utm_campaign")
            if (p := glob(getattr(w, k))) is not None
        )  # fmt: skip
        return cls(
            rule, glob(w.path), glob(w.name), utm, glob(w.referrer_host), _words(w.in_),
            _words(w.not_in), None if w.contains is None else tuple(fold(x) for x in w.contains),
        )  # fmt: skip

    def event(self, fact: Fact) -> bool:
        w = self.rule.when
        if w.type is not None and w.type != fact.type:
            return False
        if self.path is not None and not self.path.match(fact.path):
            return False
        if self.name is not None and not self.name.match(fact.name):
            return False
        if w.props and any(fact.props.get(k) != v for k, v in w.props.items()):
            return False
        return self._campaign(fact.utm_source, fact.utm_medium, fact.utm_campaign,
                              fact.referrer_host)  # fmt: skip

    def touch(self, touch: Touch | None) -> bool:
        if not touch:
            return False
        return self._campaign(
            touch.get("utm_source") or "", touch.get("utm_medium") or "",
            touch.get("utm_campaign") or "", host_of(touch.get("referrer")),
        )  # fmt: skip

    def _campaign(self, source: str, medium: str, campaign: str, referrer_host: str) -> bool:
        if not self.utm and self.referrer_host is None:
            return True
        values = {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign}
        if any(not p.match(values[k]) for k, p in self.utm):
            return False
        return self.referrer_host is None or bool(self.referrer_host.match(referrer_host))

    def trait(self, traits: Mapping[str, str]) -> bool:
        w = self.rule.when
        value = fold(traits.get(w.trait or "", "") or "")
        if w.exists is not None and bool(value) != w.exists:
            return False
        if self.words_in is not None and value not in self.words_in:
            return False
        if self.words_not_in is not None and (not value or value in self.words_not_in):
            return False
        return self.contains is None or any(word in value for word in self.contains)


def _words(words: list[str] | None) -> frozenset[str] | None:
    return None if words is None else frozenset(fold(x) for x in words)
