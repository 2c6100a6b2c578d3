"""Stitching decisions: which lead a visitor's browsing belongs to, and from when.

Pure rules, applied by the store inside the transaction that links the visitor
(``Store.link_visitor``), so the decision is taken once, on what that transaction reads:

* the same normalised email is the same lead (the blind index makes that a lookup);
* a visitor's first identification claims its whole anonymous past (``first``);
* identifying again as the same person changes nothing (``kept``);
* a browser that identifies as a different person starts a new link from that moment
  (``switched``): earlier events stay with the first lead — a shared computer never
  mixes two people's histories;
* the browser can never merge two known leads: only an explicit, recorded merge through
  the admin API does, and it can be undone exactly (``identity.merging``).
"""

from __future__ import annotations

from collections.abc import Sequence

from identity import touch
from tracker.storage.records import Event, Link, Stitch, Touch


def decide(current: Link | None, current_root: str | None, new_root: str) -> Stitch:
    """``current``: the visitor's open link, ``current_root``: the lead it stands for now."""
    if current is None:
        return Stitch.FIRST
    if current_root == new_root:
        return Stitch.KEPT
    return Stitch.SWITCHED


class Rules:
    """``StitchRules`` for the store: these decisions and the touch rules."""

    def decide(self, current: Link | None, current_root: str | None, new_root: str) -> Stitch:
        return decide(current, current_root, new_root)

    def touches(self, events: Sequence[Event], since: int) -> tuple[Touch, Touch] | None:
        return touch.touches(events, since)

    def fold(
        self, first: Touch | None, last: Touch | None, touches: tuple[Touch, Touch]
    ) -> tuple[Touch | None, Touch | None]:
        return touch.fold(first, last, touches)
