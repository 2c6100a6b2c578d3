"""Keep one visitor's events in the order the browser made them.

An event's time is its arrival minus how long it waited in the browser, so network
jitter between two requests (tens of ms) can invert two page views made a moment apart
— or put a page view made just after a shared computer's second identification into
the first person's time range. The browser's own ``ts`` says the true order, so for
each recent visitor the last (browser ts, stored time) is remembered and a later event
keeps the browser's spacing from it, never landing before it.

Recent visitors are kept in two generations of plain dicts: new entries go to the
current one; when it holds ``size / 2`` visitors it becomes the previous one and the
old previous one is dropped whole. So between ``size / 2`` and ``size`` of the latest
visitors are remembered, each update is a dict store (an LRU's reordering cost nothing
here), and memory is given back in whole generations — entries made together are freed
together, instead of one by one in arrival order, which left the allocator's arenas
fragmented and the process growing for minutes under a steady load (bench/soak.py).
"""

from __future__ import annotations

CLOCK_BYTES = 2 << 20
"""What the visitor clock may hold: 2 MiB, about 12,500 visitors (minutes of traffic on
a busy site; the order it keeps matters over seconds)."""

ENTRY_BYTES = 168
"""One remembered visitor, measured (tests/test_pipeline.py checks it with tracemalloc):
the 32-character id (81 B), the packed times (36 B) and the dict's share (~50 B)."""

_AT_BITS = 48  # stored times are milliseconds since 1970: below 2**48 until the year 10889
_AT_MASK = (1 << _AT_BITS) - 1


class VisitorClock:
    def __init__(self, size: int | None = None, *, max_bytes: int = CLOCK_BYTES) -> None:
        """Remember at most ``size`` visitors (by default as many as fit ``max_bytes``)."""
        size = size if size is not None else max_bytes // ENTRY_BYTES
        self._half = max(1, size // 2)
        # One int per visitor: (browser ts << 48) | stored time; a tuple of two ints
        # took three objects and 120 bytes.
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def order(self, vid: str, ts: int | None, at: int, *, now: int) -> int:
        """The time to store for an event ``at`` that the browser stamped ``ts``."""
        if ts is None:
            return at
        current = self._current
        last = current.get(vid)
        if last is None:
            last = self._previous.get(vid)
        if last is not None:
            last_ts, last_at = last >> _AT_BITS, last & _AT_MASK
            spaced = last_at + (ts - last_ts)  # the browser's spacing from the last one
            at = max(at, min(spaced, now)) if ts >= last_ts else min(at, spaced)
            if ts < last_ts:
                return at  # a straggler: placed before, but it is not the newest
        if not 0 <= at <= _AT_MASK:
            return at  # not a time this clock can pack (never one the collector stores)
        if vid not in current and len(current) >= self._half:
            self._previous, self._current = current, {}  # the oldest generation goes
            current = self._current
        current[vid] = (ts << _AT_BITS) | at
        return at
