"""Token-bucket rate limits per client address and per site.

Each bucket refills ``rate`` tokens a second up to ``burst``; a request costs one token
per event it carries. Address buckets group IPv6 clients by /64 (one subscriber) and
are kept in a bounded LRU, so a flood of addresses cannot grow memory. A refused
request is answered 429 with ``Retry-After`` *before* its events reach the writer
queue: abusive clients are cut off by these limits long before the queue itself has to
start answering 503 to everyone.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tracker.http_errors import TooManyRequests


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class Limiter:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        scope: str,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.scope = rate, max(burst, 1.0), scope
        self.enabled = rate > 0
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens from ``key``'s bucket or raise TooManyRequests (429)."""
        if not self.enabled:
            return
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < cost:
            wait = math.ceil((cost - bucket.tokens) / self.rate)
            raise TooManyRequests(f"rate limit ({self.scope}) exceeded",
                                  headers={"Retry-After": str(max(wait, 1))})  # fmt: skip
        bucket.tokens -= cost


def client_key(ip: str | None) -> str:
    """One bucket per IPv4 address or IPv6 /64."""
    if not ip:
        return "-"
    if ":" in ip:
        try:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
        except ValueError:
            return ip
    return ip
