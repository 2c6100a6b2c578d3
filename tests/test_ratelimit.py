"""Rate limits: token buckets per address, per site and for the API; 429 before the queue."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import make_deployment
from tests.servers import metric, with_store
from tracker.http_errors import TooManyRequests
from tracker.ratelimit import Limiter, client_key

# Every test here runs once per backend, as the module builds deployments (the few that
# need no database included).
pytestmark = pytest.mark.usefixtures("backend")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    limiter = Limiter(2.0, 4.0, scope="ip", clock=clock)
    limiter.take("a", 4)
    with pytest.raises(TooManyRequests) as caught:
        limiter.take("a", 1)
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "1"
    limiter.take("b", 4)  # another key has its own bucket
    clock.now = 1.0  # two tokens back
    limiter.take("a", 2)
    clock.now = 100.0  # never more than the burst
    limiter.take("a", 4)
    with pytest.raises(TooManyRequests):
        limiter.take("a", 1)


def test_buckets_are_bounded_and_ipv6_is_grouped_by_64() -> None:
    limiter = Limiter(1.0, 1.0, scope="ip", max_keys=100, clock=Clock())
    for n in range(1000):
        limiter.take(f"10.0.{n // 250}.{n % 250}")
    assert len(limiter._buckets) == 100
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert Limiter(0, 10, scope="off").enabled is False


def test_server_answers_429_before_events_reach_the_writer(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(
        tmp_path,
        backend=backend,
        # Refills too slow to matter within the test (one token per 20 s), so a slow
        # machine cannot refill the bucket between requests: only the burst counts.
        ASHIATO_RATE_LIMIT_IP="0.05",
        ASHIATO_RATE_LIMIT_IP_BURST="10",
        ASHIATO_RATE_LIMIT_API="0.05",
        ASHIATO_RATE_LIMIT_API_BURST="3",
    )
    dep.server.start()
    statuses, vids = [], []
    for _ in range(6):  # 6 requests of 3 events each, against a burst of 10
        batch = [dep.beacon() for _ in range(3)]
        response = dep.post({"events": batch})
        statuses.append(response.status_code)
        vids.append([b["vid"] for b in batch])
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert "rate limit" in response.json()["error"]
    assert statuses[:3] == [204, 204, 204]
    assert statuses[3:] == [429, 429, 429]
    stored = {
        e.vid
        for v in vids
        for e in with_store(dep.database_url, lambda s, v=v: s.visitor_events(v[0]))
    }
    assert stored == {v[0] for v in vids[:3]}  # refused events were never written
    assert metric(dep.url, 'ashiato_rate_limited_total{limit="ip"}') == 3
    assert metric(dep.url, 'ashiato_events_dropped_total{reason="rate_limited"}') == 9

    api = [httpx.get(f"{dep.url}/api/v1/leads").status_code for _ in range(5)]
    assert api[:3] == [401, 401, 401]  # key guessing gets slow before the key is looked at
    assert api[3:] == [429, 429]
    dep.server.stop()


def test_a_busy_site_is_limited_as_a_whole(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(
        tmp_path,
        backend=backend,
        ASHIATO_RATE_LIMIT_IP="0",
        ASHIATO_RATE_LIMIT_SITE="0.05",
        ASHIATO_RATE_LIMIT_SITE_BURST="20",
    )
    dep.server.start()
    first = dep.post({"events": [dep.beacon() for _ in range(20)]})
    second = dep.post(orjson.dumps({"events": [dep.beacon() for _ in range(5)]}))
    unknown = dep.post({"events": [dep.beacon(site="not-a-site") for _ in range(5)]})
    assert (first.status_code, second.status_code, unknown.status_code) == (204, 429, 204)
    assert metric(dep.url, 'ashiato_rate_limited_total{limit="site"}') == 1
    dep.server.stop()
