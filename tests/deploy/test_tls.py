"""The deployment as browsers meet it: HTTPS through Caddy and through nginx, configured
by ``deploy/``, in both layouts — ``https://t.example.test`` (the tracking subdomain,
cookie domain ``example.test``) and ``https://www.example.test/ashiato/`` (a path on the
site's own host) — with the real tag in real Chromium."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
import pytest

from tests.deploy.conftest import PROXIES, Stack
from tests.deploy.proxies import SITE_HOST, TRACKER_HOST, Proxy, https_request
from tests.servers import CHROME_UA, all_events, with_store
from tests.waiting import wait_for
from tracker.cookies import LIFETIME_SECONDS, OWN_SUFFIX, VID_COOKIE
from tracker.storage.records import Event

LAYOUTS = ("subdomain", "path")
# Where each layout's collector answers, and the cookie domain Chromium should record.
COLLECTOR = {"subdomain": (TRACKER_HOST, ""), "path": (SITE_HOST, "/ashiato")}
COOKIE_DOMAIN = {"subdomain": ".example.test", "path": SITE_HOST}
CLIENT = "127.0.1.5"  # a client address of its own: its /24 differs from the proxy's


def stored_pageviews(stack: Stack, url: str, count: int) -> list[Event]:
    """The page views of ``url``, once there are ``count`` of them (at most 10 s)."""

    def views() -> list[Event]:
        events = with_store(stack.database_url, all_events)
        return [e for e in events if e.type == "pageview" and e.url == url]

    return wait_for(views, lambda found: len(found) >= count, what=f"{count} page view(s) of {url}")


def server_cookie(context: Any) -> dict[str, Any]:
    """The one visitor cookie the collector set (HttpOnly: the tag cannot write those)."""
    found = [c for c in context.cookies() if c["name"] == VID_COOKIE and c["httpOnly"]]
    seen = [(c["domain"], c["httpOnly"]) for c in context.cookies() if c["name"] == VID_COOKIE]
    assert len(found) == 1, f"expected one HttpOnly {VID_COOKIE}, browser has {seen}"
    return dict(found[0])


def beacon_answered(context: Any) -> Any:
    """A context manager: on exit, a ``POST …/collect`` has been answered (at most 10 s)."""
    return context.expect_event(
        "requestfinished",
        lambda r: r.method == "POST" and r.url.endswith("/collect"),
        timeout=10_000,
    )


@pytest.mark.browser
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("proxy_name", PROXIES)
def test_the_collector_sets_its_own_first_party_cookie_over_tls(
    stack: Stack, browser: Any, request: pytest.FixtureRequest, proxy_name: str, layout: str
) -> None:
    request.getfixturevalue(proxy_name)
    context = browser.new_context(user_agent=CHROME_UA, ignore_https_errors=True)
    try:
        page = context.new_page()
        url = stack.page_url(proxy_name, layout)
        # The collector answers once the page view is committed; its cookie comes with
        # that answer, so wait for the answer, not for the database.
        with beacon_answered(context):
            page.goto(url, timeout=15_000)
        [view] = stored_pageviews(stack, url, 1)

        cookie = server_cookie(context)
        assert cookie["domain"] == COOKIE_DOMAIN[layout]
        assert (cookie["path"], cookie["secure"], cookie["sameSite"]) == ("/", True, "Lax")
        assert abs(cookie["expires"] - time.time() - LIFETIME_SECONDS) < 120
        # The collector marks its own value; on the site's own host it replaced the
        # tag's script cookie of the same name, keeping the id.
        assert cookie["value"] == f"{view.vid}{OWN_SUFFIX}"

        # The tag's own copy is gone (Safari drops script cookies after 7 days): the next
        # page view still belongs to the collector's cookie, which is not renewed.
        page.evaluate(f"document.cookie = '{VID_COOKIE}=; max-age=0; path=/; secure'")
        with beacon_answered(context):
            page.reload(timeout=15_000)
        views = stored_pageviews(stack, url, 2)
        assert [v.vid for v in views] == [view.vid] * 2
        assert server_cookie(context)["expires"] == cookie["expires"]
    finally:
        context.close()


def post_beacon(stack: Stack, proxy: Proxy, layout: str, body: bytes) -> Any:
    host, prefix = COLLECTOR[layout]
    headers = {
        "Origin": stack.origin(proxy.name),
        "User-Agent": CHROME_UA,
        "Content-Type": "text/plain",
        # What a client claims about itself is not what the proxy tells the collector.
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "http",
    }
    return https_request(
        proxy.port, host, f"{prefix}/collect", method="POST", body=body,
        headers=headers, source=CLIENT,
    )  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("proxy_name", PROXIES)
def test_the_proxy_tells_the_client_address_and_scheme_not_what_the_client_claims(
    stack: Stack, request: pytest.FixtureRequest, proxy_name: str, layout: str
) -> None:
    proxy: Proxy = request.getfixturevalue(proxy_name)
    vid = secrets.token_hex(16)
    beacon = {"site": stack.site_key, "type": "pageview", "vid": vid,
              "url": f"{stack.origin(proxy_name)}/headers"}  # fmt: skip
    answer = post_beacon(stack, proxy, layout, orjson.dumps(beacon))
    assert answer.status == 204, answer.body
    # X-Forwarded-Proto: https and the original Host, or there would be no cookie.
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{VID_COOKIE}={vid}{OWN_SUFFIX};")
    assert ("Domain=example.test" in cookie) == (layout == "subdomain")
    # X-Forwarded-For: the client's own address (truncated), not its claim, not the proxy.
    [event] = with_store(stack.database_url, lambda s: s.visitor_events(vid))
    assert event.ip == "127.0.1.0"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("proxy_name", PROXIES)
def test_limits_leave_the_collector_its_own_answers_and_metrics_to_monitoring(
    stack: Stack, request: pytest.FixtureRequest, proxy_name: str, layout: str
) -> None:
    proxy: Proxy = request.getfixturevalue(proxy_name)
    # Over ASHIATO_MAX_BODY_BYTES but under the proxy's backstop: ashiato's own 413.
    too_large = post_beacon(stack, proxy, layout, b"x" * 100_000)
    assert too_large.status == 413
    assert orjson.loads(too_large.body) == {"error": "body larger than 65536 bytes"}

    host, prefix = COLLECTOR[layout]
    inside = https_request(proxy.port, host, f"{prefix}/metrics")
    assert inside.status == 200
    assert b"ashiato_events_dropped_total" in inside.body
    outside = https_request(proxy.port, host, f"{prefix}/metrics", source=CLIENT)
    assert outside.status in (403, 404)
