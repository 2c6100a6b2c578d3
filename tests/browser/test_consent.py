"""Consent in real Chromium: opt-in holds everything until granted, withdrawal and forget
stop the tag and the server, GPC keeps a notice-site visitor anonymous."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.browser.conftest import SitePages
from tests.browser.helpers import (
    READY,
    Beacons,
    open_page,
    poll,
    stored_events,
    tag_storage,
    visit,
    visitor_cookie,
    wait_cookie,
    wait_events,
)
from tests.servers import CHROME_UA, metric, with_store
from tracker.storage.records import ConsentReceipt

pytestmark = pytest.mark.browser

NO_CONSENT = 'ashiato_events_dropped_total{reason="no_consent"}'
NO_MARKETING = 'ashiato_events_dropped_total{reason="no_marketing_consent"}'
HELD_WAIT_MS = 1500


def receipts_of(sp: SitePages, vid: str) -> list[ConsentReceipt]:
    return with_store(sp.dep.database_url, lambda s: s.consent_receipts_of([vid]))


def forge(sp: SitePages, body: dict[str, Any]) -> httpx.Response:
    """A beacon sent without a browser, as a script would: valid Origin and user agent."""
    headers = {"Origin": sp.origin, "User-Agent": CHROME_UA, "Content-Type": "text/plain"}
    return httpx.post(f"{sp.dep.url}/collect", content=json.dumps(body), headers=headers)


def granted_visitor(browser: Any, sp: SitePages) -> tuple[Any, Any, Beacons, str]:
    """A fresh visitor on the opt-in site who granted analytics (not marketing) and whose
    first page view is stored: (context, page, beacons, vid)."""
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = Beacons(context, sp.dep.url)
    page = context.new_page()
    open_page(page, f"{sp.origin}/optin/")
    page.evaluate("ashiato('consent', {analytics: true, marketing: false})")
    beacons.wait(page, lambda b: [x["type"] for x in b] == ["consent", "pageview"], "the grant")
    vid = wait_cookie(context, present=True)
    assert vid is not None
    wait_events(sp.dep.database_url, vid, lambda ev: len(ev) == 1, "the first page view")
    return context, page, beacons, vid


def withdraw(page: Any, beacons: Beacons, vid: str) -> None:
    """Refuse analytics; returns once the withdrawal beacon (the tag's last) was seen.
    Playwright reports requests in the order they were made, so by then every earlier
    beacon has been seen too."""

    def refusals(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [b for b in sent if b["type"] == "consent" and not b["consent"]["analytics"]]

    page.evaluate("ashiato('consent', {analytics: false})")
    sent = beacons.wait(page, lambda b: bool(refusals(b)), "the withdrawal beacon")
    assert [(b["vid"], b["consent"]) for b in refusals(sent)] == [
        (vid, {"analytics": False, "marketing": False})]  # fmt: skip
    assert sent[-1] == refusals(sent)[0]


def test_opt_in_site_sends_and_writes_nothing_before_consent(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    refused = metric(sp.dep.url, NO_CONSENT)
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = Beacons(context, sp.dep.url)
    page = context.new_page()
    open_page(page, f"{sp.origin}/optin/")
    page.click("#next")  # SPA navigation
    page.wait_for_url("**/optin/features")
    page.evaluate("ashiato('event', 'video_play', {id: 7})")
    page.evaluate("ashiato('page', {url: '/optin/virtual'})")
    page.evaluate("ashiato('identify', {email: 'eu.visitor@example.com'})")  # never held
    page.reload()  # a new page, still without consent
    page.wait_for_function(READY, timeout=5000)
    page.click("#back")
    page.wait_for_url("**/optin/pricing")
    beacons.none_during(page, 1000, start=0)

    assert visitor_cookie(context) is None
    assert page.evaluate("document.cookie") == ""
    assert tag_storage(page) == {}
    # Nothing was sent and dropped by the server either: nothing was sent at all.
    assert metric(sp.dep.url, NO_CONSENT) == refused
    context.close()


def test_consent_releases_held_events_with_their_original_times(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = Beacons(context, sp.dep.url)
    page = context.new_page()
    open_page(page, f"{sp.origin}/optin/")
    page.click("#next")
    page.wait_for_url("**/optin/features")
    page.evaluate("ashiato('event', 'video_play', {id: 7})")
    page.wait_for_timeout(HELD_WAIT_MS)  # the held events grow old: that is the point
    assert beacons.count == 0
    assert visitor_cookie(context) is None

    asked = time.time() * 1000
    page.evaluate("ashiato('consent', {analytics: true, marketing: false})")
    sent = beacons.wait(page, lambda b: len(b) >= 4, "the consent and the held events")
    answered = time.time() * 1000
    vid = wait_cookie(context, present=True)
    assert vid is not None
    assert [(b["type"], b.get("url", "").removeprefix(sp.origin), b.get("name")) for b in sent] == [
        ("consent", "/optin/features", None),
        ("pageview", "/optin/", None),
        ("pageview", "/optin/features", None),
        ("event", "/optin/features", "video_play"),
    ]  # fmt: skip
    assert {b["vid"] for b in sent} == {vid}
    assert sent[0]["consent"] == {"analytics": True, "marketing": False}

    events = wait_events(sp.dep.database_url, vid, lambda ev: len(ev) >= 3, "the held events")
    [receipt] = receipts_of(sp, vid)
    assert (receipt.source, receipt.analytics, receipt.marketing) == ("banner", True, False)
    assert asked - 1000 <= receipt.at <= answered + 1000  # the server's clock, at consent
    assert [(e.type, e.url, e.name) for e in events] == [
        ("pageview", f"{sp.origin}/optin/", None),
        ("pageview", f"{sp.origin}/optin/features", None),
        ("event", f"{sp.origin}/optin/features", "video_play"),
    ]  # fmt: skip
    consent_ts = sent[0]["ts"]
    for event, beacon in zip(events, sent[1:], strict=True):
        # Stored at their original times: as long before the receipt as they were
        # made before the consent in the browser, which is at least the wait.
        assert receipt.at - event.at == consent_ts - beacon["ts"]
        assert receipt.at - event.at >= HELD_WAIT_MS
    assert events[0].at <= events[1].at <= events[2].at
    # One session: releasing old events does not start a new one.
    assert {e.sid for e in events} == {sent[0]["sid"]}
    assert tag_storage(page).get("_ashiato_m") == "0"

    # From now on events flow at once, and survive a reload (the cookie proves consent).
    page.click("#back")
    # (The tag looks at the URL on the next task: reloading at once could beat it.)
    beacons.wait(page, lambda b: b[-1].get("url") == f"{sp.origin}/optin/pricing", "SPA view")
    page.reload()
    page.wait_for_function(READY, timeout=5000)
    events = wait_events(sp.dep.database_url, vid, lambda ev: len(ev) >= 5, "later page views")
    assert [e.url for e in events[3:]] == [f"{sp.origin}/optin/pricing"] * 2
    assert len(receipts_of(sp, vid)) == 1
    context.close()


def test_withdrawal_stops_the_tag_and_removes_its_traces(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    context, page, beacons, vid = granted_visitor(browser, sp)
    page.click("#next")
    wait_events(sp.dep.database_url, vid, lambda ev: len(ev) == 2, "the SPA page view")

    withdraw(page, beacons, vid)
    assert wait_cookie(context, present=False) is None
    # Only the refusal itself is remembered (no id in it), so it holds on later pages.
    assert tag_storage(page) == {"_ashiato_a": "0"}
    after_withdrawal = beacons.count

    page.click("#back")  # SPA navigation
    page.wait_for_url("**/optin/pricing")
    page.evaluate("ashiato('event', 'video_play', {id: 8})")
    page.evaluate("ashiato('consent', {marketing: true})")  # analytics stays refused
    page.reload()
    page.wait_for_function(READY, timeout=5000)
    page.click("#next")
    page.evaluate("ashiato('event', 'video_play', {id: 9})")
    open_page(page, f"{sp.origin}/optin/again")
    beacons.none_during(page, 1000, start=after_withdrawal)

    assert visitor_cookie(context) is None
    receipts = poll(lambda: receipts_of(sp, vid), lambda r: len(r) == 2, "the withdrawal receipt")
    assert [(r.source, r.analytics) for r in receipts] == [("banner", True), ("banner", False)]
    assert len(stored_events(sp.dep.database_url, vid)) == 2
    state = sp.api(f"/visitors/{vid}").json()["consent"]
    assert state == [{"site": sp.optin_key, "analytics": False, "marketing": False, "gpc": False}]
    context.close()


def test_server_drops_a_forged_beacon_for_a_withdrawn_visitor(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    context, page, beacons, vid = granted_visitor(browser, sp)
    withdraw(page, beacons, vid)
    poll(lambda: receipts_of(sp, vid), lambda r: len(r) == 2, "the withdrawal receipt")
    context.close()

    def pageview(visitor: str) -> dict[str, Any]:
        now = int(time.time() * 1000)
        return {"site": sp.optin_key, "type": "pageview", "vid": visitor,
                "sid": secrets.token_hex(8), "url": f"{sp.origin}/optin/forged",
                "title": "Forged", "ts": now, "sent": now}  # fmt: skip

    refused = metric(sp.dep.url, NO_CONSENT)
    response = forge(sp, pageview(vid))
    assert response.status_code == 204
    assert metric(sp.dep.url, NO_CONSENT) == refused + 1
    assert [e.url for e in stored_events(sp.dep.database_url, vid)] == [f"{sp.origin}/optin/"]

    # Control: the same forged page view is stored for a visitor who has consented, so
    # it was the withdrawal (not a malformed beacon) that got it dropped.
    other = secrets.token_hex(16)
    grant = {"site": sp.optin_key, "type": "consent", "vid": other,
             "consent": {"analytics": True, "marketing": False}}  # fmt: skip
    assert forge(sp, {"events": [grant, pageview(other)]}).status_code == 204
    assert [e.url for e in stored_events(sp.dep.database_url, other)] == [
        f"{sp.origin}/optin/forged"]  # fmt: skip
    assert metric(sp.dep.url, NO_CONSENT) == refused + 1


def test_gpc_on_a_notice_site_counts_page_views_but_never_identifies(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    email = "gpc.visitor@example.jp"
    context = browser.new_context(user_agent=CHROME_UA, extra_http_headers={"Sec-GPC": "1"})
    context.add_init_script(
        "Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})"
    )
    beacons = Beacons(context, sp.dep.url)
    page = context.new_page()
    vid = visit(page, f"{sp.origin}/contact/", sp.dep.database_url)
    page.fill("#email", email)
    page.fill("#name", "Gpc Visitor")
    page.fill("#company", "Private KK")
    page.click("#send")
    page.wait_for_url("**/done/contact")
    visit(page, f"{sp.origin}/thanks/contact", sp.dep.database_url)

    # Analytics is fine under notice: the page views are stored ...
    events = stored_events(sp.dep.database_url, vid)
    assert [(e.type, e.url.removeprefix(sp.origin)) for e in events if e.url] == [
        ("pageview", "/contact/"), ("pageview", "/thanks/contact")]  # fmt: skip
    # (Requests are reported in order: an identify made at the submit would come first.)
    sent = beacons.wait(page, lambda b: len(b) >= 2, "the thanks page view")
    assert [b["type"] for b in sent] == ["pageview", "pageview"]  # no identify was sent
    assert all(b["gpc"] is True for b in sent)
    assert email not in "".join(beacons.bodies)
    # ... but no lead, and the server knows marketing is off because of GPC.
    assert sp.api("/leads/lookup", email=email).status_code == 404
    visitor = sp.api(f"/visitors/{vid}").json()
    assert visitor["consent"] == [
        {"site": sp.notice_key, "analytics": True, "marketing": False, "gpc": True}]  # fmt: skip
    assert [(r["source"], r["marketing"]) for r in visitor["consent_receipts"]] == [
        ("gpc", False)]  # fmt: skip
    assert visitor["links"] == []

    # Whatever a modified tag sends, the server does not link this visitor to a person.
    dropped = metric(sp.dep.url, NO_MARKETING)
    identify = {"site": sp.notice_key, "type": "identify", "vid": vid,
                "url": f"{sp.origin}/thanks/contact", "traits": {"email": email}}  # fmt: skip
    assert forge(sp, identify).status_code == 204
    assert metric(sp.dep.url, NO_MARKETING) == dropped + 1
    assert sp.api("/leads/lookup", email=email).status_code == 404
    context.close()


def test_forget_erases_the_visitor_and_stops_the_tag(browser: Any, sites_pages: SitePages) -> None:
    sp = sites_pages
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = Beacons(context, sp.dep.url)
    page = context.new_page()
    visit(page, f"{sp.origin}/read/one", sp.dep.database_url)
    vid = visit(page, f"{sp.origin}/read/two", sp.dep.database_url)
    page.evaluate("ashiato('event', 'scroll', {depth: 90})")
    wait_events(sp.dep.database_url, vid, lambda ev: len(ev) == 3, "the event")

    page.evaluate("ashiato('forget')")
    sent = beacons.wait(page, lambda b: bool(b) and b[-1]["type"] == "forget", "the forget beacon")
    assert [(b["type"], b["vid"]) for b in sent] == [
        ("pageview", vid), ("pageview", vid), ("event", vid), ("forget", vid)]  # fmt: skip
    poll(lambda: stored_events(sp.dep.database_url, vid), lambda ev: ev == [], "the erasure")
    assert wait_cookie(context, present=False) is None
    # The refusal outlives the page (no id in it): a reload tracks nothing.
    assert tag_storage(page) == {"_ashiato_a": "0"}
    after_forget = beacons.count
    page.reload()
    page.wait_for_function(READY, timeout=5000)
    open_page(page, f"{sp.origin}/read/three")
    page.evaluate("ashiato('event', 'scroll', {depth: 10})")
    beacons.none_during(page, 1000, start=after_forget)
    assert visitor_cookie(context) is None
    assert stored_events(sp.dep.database_url, vid) == []
    receipts = receipts_of(sp, vid)
    assert [(r.source, r.analytics, r.marketing) for r in receipts] == [("forget", False, False)]
    context.close()
