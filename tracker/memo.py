"""A memo bounded by bytes: the collector's caches of values derived from request text.

Keys come from requests (user agents, page URLs, forwarding headers), so a count bound
alone is no bound: 4,096 distinct 4 KB URLs are 32 MiB. ``Memo`` charges each entry the
length of its key plus a fixed overhead for the entry and its value, and keeps two
generations of plain dicts, as ``tracker.ordering.VisitorClock`` does: new entries go to
the current one; when it has used half the budget it becomes the previous one and the
old previous one is dropped whole. A hit in the previous generation is copied forward,
so what is in use stays (an LRU's effect without its bookkeeping on every hit).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

ENTRY_OVERHEAD = 300
"""Bytes charged per entry besides its key's characters: the dict slot, the key object's
header, and a small value object (measured with tracemalloc in tests/test_memo.py)."""


class Memo(Generic[K, V]):
    def __init__(self, max_bytes: int, size_of: Callable[[K], int]) -> None:
        self._half = max_bytes // 2
        self._size_of = size_of
        self._current: dict[K, V] = {}
        self._previous: dict[K, V] = {}
        self._used = 0

    def get(self, key: K) -> V | None:
        found = self._current.get(key)
        if found is None:
            found = self._previous.get(key)
            if found is not None:
                self.put(key, found)
        return found

    def put(self, key: K, value: V) -> None:
        cost = self._size_of(key) + ENTRY_OVERHEAD
        if cost > self._half:
            return  # larger than a generation: computed again when asked again
        if self._used + cost > self._half:
            self._previous, self._current, self._used = self._current, {}, 0
        self._current[key] = value
        self._used += cost

    def clear(self) -> None:
        self._current, self._previous, self._used = {}, {}, 0

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
