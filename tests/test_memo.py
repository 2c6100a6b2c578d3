"""tracker.memo.Memo: the collector's caches stay within their bytes, whatever the keys."""

from __future__ import annotations

import secrets
import tracemalloc

from tracker.memo import Memo
from tracker.useragent import UserAgentInfo


def test_a_memo_stays_within_its_bytes_however_long_the_keys() -> None:
    budget = 1 << 20
    tracemalloc.start()
    try:
        memo: Memo[str, UserAgentInfo] = Memo(budget, len)
        for n in range(20_000):  # user-agent-like values under hostile keys of any length
            key = "Mozilla/5.0 " + secrets.token_hex(8 + n % 250)
            memo.put(key, UserAgentInfo("Chrome", str(n), "Windows", "10", "desktop"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= budget, f"peaked at {peak / 2**20:.2f} MiB"
    assert len(memo) > 500  # and still holds many (~580 bytes charged for each of these)


def test_an_entry_in_use_survives_the_generations() -> None:
    memo: Memo[str, int] = Memo(64 << 10, len)
    memo.put("in use", 1)
    for n in range(10_000):
        memo.put(f"passing {n}", n)
        assert memo.get("in use") == 1  # each hit carries it into the current generation
    assert memo.get("passing 0") is None  # what was not asked for again is gone
    memo.put("x" * (64 << 10), 2)  # larger than a generation: not kept
    assert memo.get("x" * (64 << 10)) is None
