"""Pure pipeline steps: client address, truncation, server time, URL scrubbing, gates."""

from __future__ import annotations

import ipaddress

import pytest

from tracker import pipeline, useragent
from tracker.beacon import Beacon
from tracker.drops import DropReason
from tracker.scrub import scrub_url
from tracker.storage.records import Site

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
SITE = Site(1, "key1", "shop", ("https://www.example.co.jp",), "notice", 0)
CHROME = useragent.parse(
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        (
            "10.0.0.2",
            "1.2.3.4, 198.51.100.1",
            "198.51.100.1",
        ),  # left entries are the client's claim
        ("10.0.0.2", "198.51.100.1, 10.0.0.7", "198.51.100.1"),  # skip our own proxy chain
        ("10.0.0.2", "garbage", "10.0.0.2"),
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:203.0.113.9", None, "203.0.113.9"),
        (None, "1.2.3.4", None),
    ],
)
def test_client_ip_believes_only_trusted_proxies(peer, xff, expected) -> None:  # type: ignore[no-untyped-def]
    assert pipeline.client_ip(peer, xff, PROXIES) == expected


@pytest.mark.parametrize(
    ("ip", "stored"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:1234:5678::1", "2001:db8:abcd::"),
        ("::ffff:198.51.100.200", "198.51.100.0"),
        ("not-an-ip", None),
        (None, None),
    ],
)
def test_ip_is_truncated_before_storage(ip: str | None, stored: str | None) -> None:
    assert pipeline.truncate_ip(ip) == stored


def test_server_time_trusts_only_the_browser_wait_clamped() -> None:
    now = 10_000_000_000
    assert pipeline.server_time(now, None, None) == now
    assert pipeline.server_time(now, 5_000, 8_000) == now - 3_000
    assert pipeline.server_time(now, 9_000, 8_000) == now  # negative wait: clock jumped
    day = pipeline.MAX_CLIENT_WAIT_MS
    assert pipeline.server_time(now, 0, 10 * day) == now - day


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://x.jp/a?email=taro%40example.jp&utm_source=mail",
            "https://x.jp/a?utm_source=mail",
        ),
        ("https://x.jp/a?E-Mail=x&Tel=0312345678&name=Taro&q=ok", "https://x.jp/a?q=ok"),
        ("https://x.jp/a?password=hunter2&access_token=abc&sessionid=1", "https://x.jp/a"),
        ("https://x.jp/a?ref=taro@example.jp", "https://x.jp/a"),  # value looks like an email
        ("https://user:pw@x.jp/a", "https://x.jp/a"),
        ("https://x.jp/users/taro@example.jp/edit", "https://x.jp/users/(email)/edit"),
        ("https://x.jp/a#section-2", "https://x.jp/a"),
        ("https://x.jp/#/reset?token=abc&step=2", "https://x.jp/#/reset?step=2"),
        (
            "https://x.jp/a?utm_campaign=spring%20sale&page=2",
            "https://x.jp/a?utm_campaign=spring%20sale&page=2",
        ),
        ("ftp://x.jp/a", None),
    ],
)
def test_scrub_url_removes_personal_data(url: str, expected: str | None) -> None:
    assert scrub_url(url).url == expected


def test_scrub_url_reads_campaign_and_click_ids() -> None:
    page = scrub_url("https://x.jp/?utm_source=news&utm_medium=email&gclid=G&fbclid=F&x=1")
    assert page.utm == {"utm_source": "news", "utm_medium": "email"}
    assert page.click_ids == {"gclid": "G", "fbclid": "F"}


def test_scrub_is_linear_on_hostile_input() -> None:
    # A quadratic scan of 4,000 characters per segment would make this take seconds.
    url = "https://x.jp/" + "a" * 4000 + "@" + "?" + "&".join(["k=" + "b" * 50 + "@"] * 70)
    assert scrub_url(url).url is not None


def context(**overrides) -> pipeline.Context:  # type: ignore[no-untyped-def]
    values = {
        "now_ms": 1_000,
        "sites": {"key1": SITE},
        "origin": "https://www.example.co.jp",
        "user_agent": CHROME,
        "ip": "203.0.113.0",
    }
    return pipeline.Context(**(values | overrides))


def beacon(**overrides) -> Beacon:  # type: ignore[no-untyped-def]
    values = {"site": "key1", "type": "pageview", "vid": "a" * 32, "url": "https://x.jp/"}
    return Beacon(**(values | overrides))


def test_gates_return_drop_reasons() -> None:
    assert pipeline.run(context(), beacon(site="other")) is DropReason.UNKNOWN_SITE
    assert pipeline.run(context(origin="https://evil.example"), beacon()) is (
        DropReason.FOREIGN_ORIGIN
    )
    assert pipeline.run(context(user_agent=useragent.BOT), beacon()) is DropReason.BOT
    event = pipeline.run(context(origin=None), beacon())  # server-side sender: no Origin
    assert not isinstance(event, DropReason)
    assert (event.site_id, event.browser, event.ip, event.at) == (1, "Chrome", "203.0.113.0", 1_000)


def test_visitor_clock_keeps_the_browsers_order_despite_network_jitter() -> None:
    from tracker.ordering import VisitorClock

    clock = VisitorClock(size=2)
    # Page views made 40 ms apart; the second request got through the network faster.
    first = clock.order("v", ts=1_000, at=10_050, now=10_050)
    second = clock.order("v", ts=1_040, at=10_030, now=10_100)
    assert second > first
    assert second - first == 40
    # A straggler the browser made earlier lands before the newest, not after it.
    straggler = clock.order("v", ts=1_020, at=10_100, now=10_100)
    assert first < straggler < second
    # Never in the future; other visitors unaffected; ts-less (server-side) events as given.
    assert clock.order("v", ts=100_000, at=10_200, now=10_200) == 10_200
    assert clock.order("w", ts=5, at=7, now=7) == 7
    assert clock.order("v", ts=None, at=3, now=3) == 3
    clock.order("x", ts=1, at=1, now=1)  # two generations of one: "v" is forgotten
    assert clock.order("v", ts=1, at=5, now=5) == 5


def test_visitor_clock_stays_within_its_byte_bound() -> None:
    import secrets
    import tracemalloc

    from tracker.ordering import CLOCK_BYTES, VisitorClock

    tracemalloc.start()
    try:
        clock = VisitorClock()
        for i in range(200_000):  # eight times what it holds: generations come and go
            now = 1_764_000_000_000 + i
            clock.order(secrets.token_hex(16), ts=now - 500, at=now, now=now)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= CLOCK_BYTES, f"the clock peaked at {peak / 2**20:.1f} MiB"
    # It still remembers the latest visitors.
    vid = secrets.token_hex(16)
    first = clock.order(vid, ts=1_000, at=10_050, now=10_050)
    assert clock.order(vid, ts=1_040, at=10_030, now=10_100) == first + 40
