"""What page views count for in the roll-ups (``tables/rollups.py``), decided once.

Pure: a ``Tally`` of some page views (in storage order) is the page views and sessions
per (site, dimension, hour, value) and the visitor-hours with each one's previous hour.
The roll-ups add tallies as events are written and apply the difference of two when
events are deleted; the dashboard tallies raw page views the same way when filtered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from tracker.urls import host_of, path_of

HOUR_MS = 3_600_000
DAILY = ("page", "entry")
"""Dimensions also counted per UTC day (``page/day``, ``entry/day``; ``hour`` is the day's
first): their many values make a month of hours a long read."""
SESSION_DIMENSIONS = ("entry", "referrer", "source", "medium", "campaign", "device",
                      "browser", "os")  # fmt: skip

Session = tuple[int, str, str]
"""(site_id, vid, sid)."""
Key = tuple[int, str, int, str]
"""(site_id, dimension, hour, value)."""
VisitorHour = tuple[int, int, str]
"""(site_id, hour, vid)."""
VisitorRow = tuple[int, int, int]
"""A ``rollup_visitors`` row's key: (site_id, hour, id of the visitor's first page view in
that hour)."""
View = tuple[Any, ...]
"""A page view's ``VIEW_COLUMNS``."""


@dataclass(slots=True)
class Tally:
    """What some page views count for."""

    views: Counter[Key] = field(default_factory=Counter)
    sessions: Counter[Key] = field(default_factory=Counter)
    visitors: dict[VisitorHour, tuple[int, int]] = field(default_factory=dict)
    """Each hour a visitor viewed a page in -> (the visitor's previous such hour or -1,
    the id of the visitor's first page view in it)."""

    def rows(self) -> list[tuple[Key, int, int]]:
        """(key, page views, sessions), in key order; no all-zero rows."""
        views, sessions = self.views, self.sessions
        keys = sorted(views.keys() | sessions.keys())
        found = [(k, views.get(k, 0), sessions.get(k, 0)) for k in keys]
        return [r for r in found if r[1] or r[2]]

    def minus(self, other: Tally) -> Tally:
        """The change from ``other`` to this: counts subtracted; visitor-hours that are
        new or whose previous hour changed (those gone: ``gone``)."""
        views, sessions = Counter(self.views), Counter(self.sessions)
        for key, n in other.views.items():
            views[key] -= n
        for key, n in other.sessions.items():
            sessions[key] -= n
        changed = {k: v for k, v in self.visitors.items() if other.visitors.get(k) != v}
        return Tally(views, sessions, changed)

    def gone(self, other: Tally) -> set[VisitorRow]:
        """The rows of the visitor-hours of ``other`` that this has not."""
        return {(k[0], k[1], other.visitors[k][1]) for k in other.visitors.keys() - self.visitors}


def tally(
    views: Iterable[View],
    known: Set[tuple[int, str, str]] = frozenset(),
    last: Mapping[tuple[int, str], int] | None = None,
) -> Tally:
    """What ``views`` (in storage order) count for. ``known``: sessions (site, vid, sid)
    that had a page view before them; ``last``: each visitor's latest hour with a page
    view before them (none later than theirs)."""
    # Counted per distinct (hour, page) and (hour, landing) first, spread over their
    # dimensions after: far fewer keys to build than page views.
    pages, landings = Counter[tuple[Any, ...]](), Counter[tuple[Any, ...]]()
    hours = dict[tuple[int, str], dict[int, int]]()  # (site, vid) -> hour -> first id
    seen = set(known)
    for id_, site, vid, sid, at, url, ref, source, medium, campaign, device, browser, os_ in views:
        hour = at // HOUR_MS
        pages[site, hour, url] += 1
        active = hours.get((site, vid))
        if active is None:
            hours[site, vid] = {hour: id_}
        elif hour not in active:
            active[hour] = id_
        session = (site, vid, sid or "")
        if session in seen:
            continue
        seen.add(session)
        landings[site, hour, url, ref, source, medium, campaign, device, browser, os_] += 1
    viewed, entered = spread(pages, landings)
    visitors = {}
    for (site, vid), active in hours.items():
        prev = -1 if last is None else last.get((site, vid), -1)
        for hour in sorted(active) if len(active) > 1 else active:
            if hour != prev:  # the same hour as before: its row is there already
                visitors[site, hour, vid] = (prev, active[hour])
            prev = hour
    return Tally(viewed, entered, visitors)


def spread(
    pages: Mapping[tuple[Any, ...], int], landings: Mapping[tuple[Any, ...], int]
) -> tuple[Counter[Key], Counter[Key]]:
    """Page views per (site, hour, url) and sessions per (site, hour, url, referrer,
    source, medium, campaign, device, browser, os) of their first page view, spread over
    the dimensions they count for: (page views, sessions) per ``Key``."""
    viewed, entered = Counter[Key](), Counter[Key]()
    for (site, hour, url), n in pages.items():
        path, day = path_of(url), hour - hour % 24
        for key in (site, "", hour, ""), (site, "page", hour, path), (site, "page/day", day, path):
            viewed[key] += n
    for (site, hour, url, ref, *rest), n in landings.items():
        path, day = path_of(url), hour - hour % 24
        source, medium, campaign, device, browser, os_ = (v or "" for v in rest)
        for key in (
            (site, "", hour, ""), (site, "entry", hour, path), (site, "entry/day", day, path),
            (site, "referrer", hour, host_of(ref)), (site, "source", hour, source),
            (site, "medium", hour, medium), (site, "campaign", hour, campaign),
            (site, "device", hour, device), (site, "browser", hour, browser),
            (site, "os", hour, os_),
        ):  # fmt: skip
            entered[key] += n
    return viewed, entered


# -- applying a tally ------------------------------------------------------------------
