"""Stitching decisions: which lead a visitor's browsing belongs to, and from when.

Pure rules, applied atomically by the store (``Store.link_visitor``):

* the same normalised email is the same lead (the blind index makes that a lookup);
* a visitor's first identification claims its whole anonymous past (``first``);
* identifying again as the same person changes nothing (``keep``);
* a browser that identifies as a different person starts a new link from that moment
  (``switch``): earlier events stay with the first lead — a shared computer never mixes
  two people's histories;
* the browser can never merge two known leads: only an explicit, recorded merge through
  the admin API does, and it can be undone exactly.
"""

from __future__ import annotations

from tracker.storage.records import Link

KEEP, FIRST, SWITCH = "keep", "first", "switch"


def decide(current: Link | None, current_root: str | None, new_root: str) -> str:
    """``current``: the visitor's open link, ``current_root``: the lead it stands for now."""
    if current is None:
        return FIRST
    if current_root == new_root:
        return KEEP
    return SWITCH


class Rules:
    """``StitchRules`` for the store."""

    def decide(self, current: Link | None, current_root: str | None, new_root: str) -> str:
        return decide(current, current_root, new_root)
