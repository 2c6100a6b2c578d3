"""Which entries events and a profile earn under a rule set: pure, deterministic.

Events are taken in (time, id) order whatever order they came in, so replaying a
lead's history gives the same ledger as scoring it event by event in time order. What
earlier entries used up (once, once per object, the caps) is read from the ``prior``
entries themselves, so the ledger is its own state: nothing else needs keeping.

Caps bound the positive points of a rule per day, of a group per day and in all, and of
the whole engagement axis; a rule hitting a cap earns what is left (saying so), and
nothing once nothing is left. Negative points are never capped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scoring.document import Document, Rule
from scoring.matching import Fact, Matcher, Profile
from tracker.storage.records import ScoreEntry

DAY_MS = 86_400_000


@dataclass(slots=True)
class Used:
    """What the prior entries have used up."""

    sources: set[tuple[str, str]] = field(default_factory=set)
    fired: set[tuple[str, str]] = field(default_factory=set)
    rule_day: Counter[tuple[str, int]] = field(default_factory=Counter)
    group_day: Counter[tuple[str, int]] = field(default_factory=Counter)
    group_all: Counter[str] = field(default_factory=Counter)
    total: int = 0
    net: Counter[str] = field(default_factory=Counter)
    count: Counter[str] = field(default_factory=Counter)


class Engine:
    def __init__(self, doc: Document, version: int) -> None:
        self.doc, self.version = doc, version
        self.offset_ms = int(doc.caps.utc_offset_hours) * 3_600_000
        matchers = [Matcher.of(r) for r in doc.rule]
        self.event_rules = [m for m in matchers if not m.rule.when.on_lead]
        self.lead_rules = [m for m in matchers if m.rule.when.on_lead]
        self.by_type: dict[str | None, list[Matcher]] = {}
        for m in self.event_rules:
            self.by_type.setdefault(m.rule.when.type, []).append(m)
        self.groups = doc.group
        self.rules = {r.id: r for r in doc.rule}

    def day(self, at: int) -> int:
        return (at + self.offset_ms) // DAY_MS

    def used(self, prior: Iterable[ScoreEntry]) -> Used:
        used = Used()
        for e in prior:
            self._use(used, e)
        return used

    def _use(self, used: Used, e: ScoreEntry) -> None:
        used.sources.add((e.rule, e.source))
        used.count[e.rule] += 1
        used.net[e.rule] += e.points
        if e.kind != "event":
            return
        used.fired.add((e.rule, e.object or ""))
        if e.points > 0:
            day = self.day(e.at)
            used.rule_day[e.rule, day] += e.points
            rule = self.rules.get(e.rule)
            if rule is not None and rule.group is not None:
                used.group_day[rule.group, day] += e.points
                used.group_all[rule.group] += e.points
            if e.axis == "engagement":
                used.total += e.points

    def events(self, prior: Sequence[ScoreEntry], facts: Iterable[Fact]) -> list[ScoreEntry]:
        used, out = self.used(prior), []
        candidates = self.by_type.get(None, [])
        for fact in sorted(facts, key=lambda f: (f.at, f.order)):
            for m in (*self.by_type.get(fact.type, ()), *candidates):
                entry = self._fire(m.rule, fact, used) if m.event(fact) else None
                if entry is not None:
                    self._use(used, entry)
                    out.append(entry)
        return out

    def _fire(self, rule: Rule, fact: Fact, used: Used) -> ScoreEntry | None:
        if (rule.id, fact.source) in used.sources:
            return None  # already scored (a replayed or re-read event)
        key = {"once": "", "once_per_object": fact.object}.get(rule.fire)
        if key is not None and (rule.id, key) in used.fired:
            return None
        points, capped = self._capped(rule, fact.at, used)
        if points == 0 and rule.points != 0:
            return None
        what = fact.name or fact.path if fact.type == "event" else fact.path or fact.name
        reason = f"{rule.name or rule.id}: {fact.type} {what}".rstrip() + capped
        return ScoreEntry(rule.id, rule.axis, "event", fact.source, points, fact.at, reason,
                          key if key is not None else fact.object, self.version)  # fmt: skip

    def _capped(self, rule: Rule, at: int, used: Used) -> tuple[int, str]:
        points = int(rule.points)
        if points <= 0:
            return points, ""
        day, room = self.day(at), [(points, "")]
        if rule.cap_per_day is not None:
            room.append((int(rule.cap_per_day) - used.rule_day[rule.id, day], "rule's daily cap"))
        group = self.groups.get(rule.group or "")
        if group is not None and group.cap_per_day is not None:
            left = int(group.cap_per_day) - used.group_day[rule.group or "", day]
            room.append((left, f"group {rule.group}'s daily cap"))
        if group is not None and group.cap is not None:
            room.append(
                (int(group.cap) - used.group_all[rule.group or ""], f"group {rule.group}'s cap")
            )
        total = self.doc.caps.total
        if total is not None and rule.axis == "engagement":
            room.append((int(total) - used.total, "total cap"))
        allowed, why = min(room, key=lambda r: r[0])
        allowed = max(allowed, 0)
        return allowed, (f" (capped by the {why})" if allowed < points else "")

    def profile(
        self, prior: Sequence[ScoreEntry], profile: Profile, *, now: int
    ) -> list[ScoreEntry]:
        """A trait or touch rule holds its points while it matches: it earns them when it
        starts to match and gives them back (an entry of the opposite sign) when it stops."""
        used, out = self.used(prior), []
        for m in self.lead_rules:
            rule, when = m.rule, m.rule.when
            touch = profile.first_touch if when.touch == "first" else profile.last_touch
            matches = m.trait(profile.traits) if when.trait else m.touch(touch)
            held = used.net[rule.id]
            change = int(rule.points) - held if matches else -held
            if change == 0:
                continue
            what = f"trait:{when.trait}" if when.trait else f"touch:{when.touch}"
            at = int((touch or {}).get("at") or now) if when.touch else now
            verb = "matches" if matches else "no longer matches"
            out.append(ScoreEntry(rule.id, rule.axis, "profile", f"{what}#{used.count[rule.id]}",
                                  change, at, f"{rule.name or rule.id}: {what} {verb}",
                                  None, self.version))  # fmt: skip
        return out
