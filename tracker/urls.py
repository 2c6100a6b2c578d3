"""The parts of a stored URL that rules and counts group by: its path and its host.

Scoring matches page patterns and referrer hosts with them, and the roll-ups count by
them: one definition, so a rule and a dashboard never disagree on what a page is. Both
are remembered per URL within a byte bound (URLs may be 4,096 characters long).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

from tracker.memo import Memo

_PATHS: Memo[str, str] = Memo(1 << 20, len)
_HOSTS: Memo[str, str] = Memo(1 << 20, len)


def path_of(url: str | None) -> str:
    """The URL's path (``/`` when it has none); ``""`` for no URL or an unreadable one."""
    return _part(_PATHS, url, lambda parts: parts.path or "/")


def host_of(url: str | None) -> str:
    """The URL's host name, lower-case; ``""`` for none or an unreadable URL."""
    return _part(_HOSTS, url, lambda parts: parts.hostname or "")


def _part(memo: Memo[str, str], url: str | None, read: Callable[[SplitResult], str]) -> str:
    if not url:
        return ""
    found = memo.get(url)
    if found is None:
        try:
            found = read(urlsplit(url))
        except ValueError:
            found = ""
        memo.put(url, found)
    return found
