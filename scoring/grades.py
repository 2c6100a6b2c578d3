"""Decay, grades and the ``lead.hot`` hysteresis: pure arithmetic on ledger entries.

Engagement points halve every ``half_life_days``, counted from when each was earned and
computed when the score is read: no job ever rewrites a score. Every entry decays at
the same rate, so a score only shrinks toward zero between two new entries (it is a
constant times 2^(-t/half-life)); the lowest it has been since it was last computed is
therefore its value just before the next entry, which is where re-arming is decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scoring.document import Document
from tracker.storage.records import ScoreEntry, Standing

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Grading:
    hot_from: float
    warm_from: float
    rearm_below: float
    half_life_ms: float
    """0: no decay."""
    fit_a: float
    fit_b: float
    fit_c: float

    @classmethod
    def of(cls, doc: Document) -> Grading:
        g, f = doc.grades, doc.fit_grades
        return cls(g.hot, g.warm, g.rearm_below, doc.decay.half_life_days * DAY_MS,
                   f.a, f.b, f.c)  # fmt: skip

    def decay(self, points: float, earned_at: int, now: int) -> float:
        """``points`` earned at ``earned_at`` as they count at ``now`` (never more than
        earned: an entry from the future counts in full)."""
        if self.half_life_ms <= 0 or now <= earned_at:
            return float(points)
        return float(points * 0.5 ** ((now - earned_at) / self.half_life_ms))

    def score(self, entries: Iterable[ScoreEntry], now: int) -> float:
        return sum(self.decay(e.points, e.at, now) for e in entries if e.axis == "engagement")

    def grade(self, score: float) -> str:
        if score >= self.hot_from:
            return "hot"
        return "warm" if score >= self.warm_from else "cool"

    def fit_grade(self, fit: float) -> str:
        if fit >= self.fit_a:
            return "A"
        if fit >= self.fit_b:
            return "B"
        return "C" if fit >= self.fit_c else "D"

    def standing(self, entries: Iterable[ScoreEntry], now: int) -> Standing:
        entries = list(entries)
        score = round(self.score(entries, now), 6)
        fit = sum(e.points for e in entries if e.axis == "fit")
        return Standing(score, self.grade(score), fit, self.fit_grade(fit))

    def hot(self, before: float, after: float, armed: bool) -> tuple[bool, bool]:
        """(send ``lead.hot``?, armed afterwards). Falling below ``rearm_below`` arms;
        reaching ``hot`` while armed sends once and disarms."""
        armed = armed or before < self.rearm_below
        if armed and after >= self.hot_from:
            return True, False
        return False, armed
