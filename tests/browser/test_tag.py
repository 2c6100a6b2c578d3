"""The real tag in real headless Chromium against the real collector."""

from __future__ import annotations

import pytest

from tests.browser.helpers import wait_events
from tests.servers import CHROME_UA, metric, with_store
from tests.waiting import wait_until

pytestmark = pytest.mark.browser


def visitor_id(context) -> str:  # type: ignore[no-untyped-def]
    [cookie] = [c for c in context.cookies() if c["name"] == "_ashiato_vid"]
    return str(cookie["value"])


def test_pageviews_spa_clicks_and_events_are_stored_once(browser, site_pages) -> None:  # type: ignore[no-untyped-def]
    dep, origin = site_pages
    context = browser.new_context(user_agent=CHROME_UA)
    context.route("https://partner.example/**", lambda route: route.fulfill(body="partner"))
    page = context.new_page()
    page.goto(f"{origin}/spa/")
    page.wait_for_function("window.ashiato && window.ashiato.l")
    page.click("#same")  # replaceState to the same URL: no page view
    page.click("#anchor")  # in-page anchor: no page view
    page.click("#next")  # SPA navigation: one page view
    page.evaluate("ashiato('event', 'signup', {plan: 'pro', seats: 3})")
    # Same-site file: the download event goes out, then the browser navigates. Wait for
    # its beacon before the next goto: a goto a millisecond after the click (no person
    # is that fast) can stop the page before the event leaves it.
    with page.expect_request(lambda r: "/collect" in r.url and '"download"' in (r.post_data or "")):
        page.click("#pdf", modifiers=[])
    page.goto(f"{origin}/spa/")
    page.wait_for_function("window.ashiato && window.ashiato.l")
    vid = visitor_id(context)
    page.reload()  # same visitor id after a reload
    page.wait_for_function("window.ashiato && window.ashiato.l")
    page.click("#out")  # outbound: recorded, then the browser leaves the site
    page.wait_for_url("https://partner.example/offer")
    assert visitor_id(context) == vid

    expected_pageviews = 4  # load, SPA navigation, back to /spa/, reload
    events = wait_events(
        dep.database_url,
        vid,
        lambda ev: {"outbound", "download"} <= {e.name for e in ev},
        "the outbound and the download",
    )
    pageviews = [e for e in events if e.type == "pageview"]
    assert [e.url for e in pageviews] == [
        f"{origin}/spa/", f"{origin}/spa/second", f"{origin}/spa/", f"{origin}/spa/"]  # fmt: skip
    assert len(pageviews) == expected_pageviews
    assert pageviews[1].title == "Second"
    assert pageviews[1].referrer == f"{origin}/spa/"
    names = [e.name for e in events if e.type == "event"]
    assert names.count("signup") == 1
    assert names.count("queued_before_load") == 3  # once per full page load
    assert [e.props for e in events if e.name == "outbound"] == [
        {"url": "https://partner.example/offer"}]  # fmt: skip
    assert [e.props for e in events if e.name == "download"] == [
        {"url": f"{origin}/files/brochure.pdf"}]  # fmt: skip
    assert {e.vid for e in events} == {vid}
    assert len({e.sid for e in events}) == 1
    for event in events:
        assert (event.browser, event.os, event.device) == ("Chrome", "Windows", "desktop")
        assert event.ip == "127.0.0.0"
    context.close()


def test_headless_chrome_is_dropped_as_a_bot(browser, site_pages) -> None:  # type: ignore[no-untyped-def]
    dep, origin = site_pages
    before = metric(dep.url, 'ashiato_events_dropped_total{reason="bot"}')
    context = browser.new_context()  # Chromium's own "HeadlessChrome" user agent
    page = context.new_page()
    page.goto(f"{origin}/spa/")
    page.wait_for_function("window.ashiato && window.ashiato.l")
    vid = visitor_id(context)
    bots = 'ashiato_events_dropped_total{reason="bot"}'
    wait_until(lambda: metric(dep.url, bots) >= before + 2, what="the headless page view")
    assert with_store(dep.database_url, lambda s: s.visitor_events(vid)) == []
    context.close()
