"""Keep one visitor's events in the order the browser made them.

An event's time is its arrival minus how long it waited in the browser, so network
jitter between two requests (tens of ms) can invert two page views made a moment apart
— or put a page view made just after a shared computer's second identification into
the first person's time range. The browser's own ``ts`` says the true order, so for
each recent visitor (a bounded LRU) the last (browser ts, stored time) is remembered and
a later event keeps the browser's spacing from it, never landing before it.
"""

from __future__ import annotations

from collections import OrderedDict


class VisitorClock:
    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._last: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def order(self, vid: str, ts: int | None, at: int, *, now: int) -> int:
        """The time to store for an event ``at`` that the browser stamped ``ts``."""
        if ts is None:
            return at
        last = self._last.get(vid)
        if last is not None:
            last_ts, last_at = last
            spaced = last_at + (ts - last_ts)  # the browser's spacing from the last one
            at = max(at, min(spaced, now)) if ts >= last_ts else min(at, spaced)
            if ts < last_ts:
                return at  # a straggler: placed before, but it is not the newest
            self._last.move_to_end(vid)
        self._last[vid] = (ts, at)
        if len(self._last) > self._size:
            self._last.popitem(last=False)
        return at
