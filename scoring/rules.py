"""A site's rules as the store applies them: the ``ScoringRules`` the ledger's
transactions are given (``tracker.storage.tables.scoring``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scoring.document import Document
from scoring.engine import Engine
from scoring.grades import Grading
from scoring.matching import Fact, Profile
from tracker.storage.records import Event, ScoreEntry, Standing

TOP_ENTRIES = 5


class RuleSet:
    """One version of one site's rules, compiled."""

    def __init__(self, doc: Document, *, site_id: int, version: int) -> None:
        self.doc, self.site_id, self.version = doc, site_id, version
        self.engine = Engine(doc, version)
        self.grading = Grading.of(doc)

    @property
    def empty(self) -> bool:
        return not self.doc.rule

    def evaluate(
        self, prior: Sequence[ScoreEntry], events: Sequence[Event], profile: Any, now: int = 0
    ) -> list[ScoreEntry]:
        """Entries earned by ``events`` (those of this site), then by ``profile``."""
        facts = [Fact.of(e) for e in events if e.site_id == self.site_id and e.id is not None]
        out = self.engine.events(prior, facts)
        if isinstance(profile, Profile):
            out += self.engine.profile([*prior, *out], profile, now=now)
        return out

    def standing(self, entries: Sequence[ScoreEntry], now: int) -> Standing:
        return self.grading.standing(entries, now)

    def hot(self, before: float, after: float, armed: bool) -> tuple[bool, bool]:
        return self.grading.hot(before, after, armed)

    def hot_data(self, entries: Sequence[ScoreEntry], now: int) -> dict[str, Any]:
        standing = self.standing(entries, now)
        return {
            "score": standing.score, "grade": standing.grade,
            "fit": standing.fit, "fit_grade": standing.fit_grade,
            "rules_version": self.version, "top_entries": top_entries(self, entries, now),
        }  # fmt: skip


def top_entries(rules: RuleSet, entries: Sequence[ScoreEntry], now: int) -> list[dict[str, Any]]:
    """The entries that count most now (decay applied), largest first."""

    def weight(e: ScoreEntry) -> float:
        return rules.grading.decay(e.points, e.at, now) if e.axis == "engagement" else e.points

    ranked = sorted(entries, key=lambda e: (-abs(weight(e)), -e.at, e.source))[:TOP_ENTRIES]
    return [{"rule": e.rule, "points": e.points, "counts": round(weight(e), 3), "at": e.at,
             "reason": e.reason} for e in ranked]  # fmt: skip
