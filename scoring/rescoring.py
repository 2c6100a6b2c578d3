"""Replaying history under a site's current rules: resumable, with progress.

Leads are taken in id order, a batch per transaction; a lead already scored under the
current rules is skipped, so an interrupted run picks up where it stopped. The old
entries stay in the ledger (it is append-only); the lead's score counts the new ones.
A dry run writes nothing: it says how many leads would change grade and the largest
moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scoring.rules import RuleSet
from scoring.service import Scoring
from tracker.errors import NotFound
from tracker.storage.records import Rescored

BATCH = 200
LARGEST = 10


@dataclass(slots=True)
class Report:
    site_id: int
    version: int
    leads: int = 0
    """Leads replayed."""
    grade_changes: int = 0
    moves: list[Rescored] = field(default_factory=list)
    """The largest score changes, largest first."""

    def add(self, done: list[Rescored]) -> None:
        self.leads += len(done)
        self.grade_changes += sum(r.before.grade != r.after.grade for r in done)
        moved = sorted([*self.moves, *done], key=lambda r: -abs(r.after.score - r.before.score))
        self.moves = [r for r in moved if r.after.score != r.before.score][:LARGEST]


Progress = Callable[[int, int], None]


async def rescore(
    scoring: Scoring,
    site_id: int,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    rules: RuleSet | None = None,
) -> Report:
    """``rules``: other rules than the site's current ones (a dry run of a new file)."""
    if rules is None:
        info = await scoring.rules(site_id)
        if info is None:
            raise NotFound("the site has no scoring rules")
        rules = info.rules
    store = scoring.store
    total, _ = await store.count_leads_on_site(site_id, rules.version)
    report, after, seen = Report(site_id, rules.version), "", 0
    while batch := await store.leads_on_site(site_id, after=after, limit=BATCH):
        after = batch[-1]
        profiles = {}
        for lead_id in batch:
            lead = await store.lead(lead_id)
            if lead is not None and lead.merged_into is None:
                profiles[lead_id] = await scoring.profile(lead)
        done = await store.rescore(batch, rules, profiles, now=scoring.ms(), dry_run=dry_run)
        report.add(done)
        seen = min(total, seen + len(batch))
        if progress is not None:
            progress(seen, total)
    return report
