"""Merges of leads: when one may be recorded, and when one may be undone.

Pure rules, checked by the store inside the transaction that applies the merge
(``Store.merge_leads``, ``Store.unmerge_leads``), on what that transaction reads:

* both leads must exist;
* a lead already merged into another must be unmerged before it is merged again (so a
  merge can always be undone exactly);
* a lead is never merged into itself, directly or through the chain of earlier merges;
* a merge is undone once.
"""

from __future__ import annotations

from collections.abc import Collection

from tracker.errors import Conflict, NotFound
from tracker.storage.records import Merge


def admit_merge(merge: Merge, found: Collection[str], from_root: str, into_root: str) -> None:
    """Raise unless ``merge`` may be applied. ``found``: which of its leads exist;
    ``from_root``/``into_root``: the leads they stand for now."""
    if merge.into_lead not in found or merge.from_lead not in found:
        raise NotFound("lead not found")
    if from_root != merge.from_lead:
        raise Conflict("that lead is already merged into another; unmerge it first")
    if merge.from_lead in (into_root, merge.into_lead):
        raise Conflict("a lead cannot be merged into itself")


def admit_unmerge(merge: Merge | None) -> Merge:
    """The merge to undo, unless there is none or it was undone already."""
    if merge is None:
        raise NotFound("merge not found")
    if merge.undone_at is not None:
        raise Conflict("that merge was already undone")
    return merge


class Rules:
    """``MergeRules`` for the store."""

    def admit_merge(
        self, merge: Merge, found: Collection[str], from_root: str, into_root: str
    ) -> None:
        admit_merge(merge, found, from_root, into_root)

    def admit_unmerge(self, merge: Merge | None) -> Merge:
        return admit_unmerge(merge)
