"""A lead's or visitor's history as the console shows it: days, and in each day the
sessions (a browser's visit), each a list of what happened — page views with titles,
events, form submissions, identifications, merges, consent changes and score changes.

Pure: it arranges the API's timeline items (``tracker.api.leads.timeline_items``) and
the points ledger; what happened before the person first identified is marked
anonymous, so a marketer sees which browsing turned into the lead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from babel.dates import format_date

from tracker.api import answers
from tracker.console.i18n import Clock

KINDS: dict[type, str] = {
    answers.EventItem: "event",
    answers.IdentifiedItem: "identified",
    answers.MergeItem: "merge",
    answers.UnmergeItem: "unmerge",
    answers.ConsentItem: "consent",
    answers.SubmissionItem: "form",
}


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    """pageview, event, identify, form, identified, merge, unmerge, consent, score."""
    at: int
    item: Any
    anonymous: bool


@dataclass(slots=True)
class Session:
    sid: str | None
    entries: list[Entry] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return sum(1 for e in self.entries if e.kind == "pageview")

    @property
    def anonymous(self) -> bool:
        return all(e.anonymous for e in self.entries)

    @property
    def start(self) -> int:
        return self.entries[0].at

    @property
    def end(self) -> int:
        return self.entries[-1].at

    @property
    def first_view(self) -> answers.EventItem | None:
        return next((e.item for e in self.entries if e.kind == "pageview"), None)


@dataclass(slots=True)
class Day:
    label: str
    sessions: list[Session] = field(default_factory=list)


def entry_of(item: Any, identified_at: int | None) -> Entry:
    if isinstance(item, answers.LedgerEntry):
        kind = "score"
    elif isinstance(item, answers.EventItem):
        kind = item.type if item.type in ("pageview", "identify") else "event"
    else:
        kind = KINDS[type(item)]
    anonymous = identified_at is None or item.at < identified_at
    return Entry(kind, item.at, item, anonymous)


def arrange(
    items: Iterable[Any], clock: Clock, *, identified_at: int | None, newest_first: bool = True
) -> list[Day]:
    """Items (in time order) by day in the user's zone, then by session; an item without
    a session (an identification, a merge, a score change) joins the session it
    happened in, or the day's latest."""
    days: dict[dt.date, Day] = {}
    for item in items:
        entry = entry_of(item, identified_at)
        date = dt.datetime.fromtimestamp(entry.at / 1000, clock.zone).date()
        day = days.get(date)
        if day is None:
            day = days[date] = Day(format_date(date, "full", locale=clock.language))
        sid = item.session if isinstance(item, answers.EventItem) else None
        latest = day.sessions[-1] if day.sessions else None
        if latest is not None and (sid is None or latest.sid in (sid, None)):
            if latest.sid is None:
                latest.sid = sid
            latest.entries.append(entry)
        else:
            day.sessions.append(Session(sid, [entry]))
    ordered = list(days.values())
    if newest_first:
        ordered.reverse()
    return ordered


@dataclass(frozen=True, slots=True)
class Before:
    """What a person browsed before first identifying: the anonymous part in figures."""

    pages: int
    visits: int
    since: int | None
    first: answers.EventItem | None


def before_identifying(items: Iterable[Any], identified_at: int | None) -> Before:
    views = [i for i in items if isinstance(i, answers.EventItem) and i.type == "pageview"
             and identified_at is not None and i.at < identified_at]  # fmt: skip
    first = views[0] if views else None
    return Before(len(views), len({v.session or v.at for v in views}),
                  first.at if first else None, first)  # fmt: skip


def window(items: Sequence[Any], before: int | None, size: int) -> tuple[list[Any], int | None]:
    """The newest ``size`` items (in time order) older than ``before``, never splitting
    a millisecond, and where the next older page starts (None: nothing older)."""
    older = [i for i in items if before is None or i.at < before]
    if len(older) <= size:
        return older, None
    cut = older[-size].at
    shown = [i for i in older if i.at >= cut]
    return shown, cut


def before_param(text: str | None) -> int | None:
    """``?before=`` (ms), as a page's "earlier" link gave it; anything else: the newest."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 15:
        return None
    return int(text)


def identified_at(links: Sequence[answers.VisitorLink]) -> int | None:
    """When the person first gave who they are (a link's time); before it: anonymous."""
    return min((link.linked_at for link in links), default=None)


def clock_time(clock: Clock, ms: int) -> str:
    """HH:mm in the user's zone (the same in both languages; a timeline calls it for
    every line, so without Babel)."""
    return dt.datetime.fromtimestamp(ms / 1000, clock.zone).strftime("%H:%M")


def path_of(url: str | None) -> str:
    """A URL's path and query, for a line a person reads (the whole URL is its title)."""
    if not url:
        return ""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def host_of(url: str | None) -> str:
    return urlsplit(url).hostname or "" if url else ""
