"""Identification in real Chromium: a form turns an anonymous visitor into a lead with
their whole history; the same email on another device joins that lead; two people on
one computer never share a history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import SitePages
from tests.browser.helpers import Beacons, poll, visit
from tests.servers import CHROME_UA

pytestmark = pytest.mark.browser

PASSWORD = "P@ssw0rd-NEVER-SENT"
HIDDEN = "HIDDEN-SECRET-7c1f"  # the hidden field's value in contact.html
CARD = "4111111111111111"


def lead_of(sp: SitePages, email: str) -> dict[str, Any]:
    """The lead for ``email`` once the identification is applied: the lead exists and the
    visitor is linked (two transactions: the lead can be seen a moment before its link)."""

    def linked(response: Any) -> bool:
        return response.status_code == 200 and bool(response.json()["visitors"])

    found = poll(lambda: sp.api("/leads/lookup", email=email), linked, f"the lead of {email!r}")
    lead: dict[str, Any] = found.json()
    return lead


def timeline(sp: SitePages, lead_id: str) -> list[dict[str, Any]]:
    response = sp.api(f"/leads/{lead_id}/timeline")
    assert response.status_code == 200, response.text
    assert response.json()["truncated"] is False
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def kind(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [item for item in items if item["kind"] == name]


def submit(page: Any, email: str, **fields: str) -> None:
    """Fill and submit the page's form; it leaves for /done/... (a page without the tag)."""
    page.fill("#email", email)
    for field, value in fields.items():
        page.fill(f"#{field}", value)
    page.click("#send")
    page.wait_for_url("**/done/**")


def test_form_turns_the_anonymous_visitor_into_a_lead_with_its_history(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    origin, db, email = sp.origin, sites_pages.dep.database_url, "taro.yamada@example.jp"
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = Beacons(context, sp.dep.url)
    page = context.new_page()
    for path in ("/read/one", "/read/two", "/read/three", "/contact/"):
        vid = visit(page, origin + path, db)
    assert sp.api("/leads/lookup", email=email).status_code == 404

    page.fill("#password", PASSWORD)
    page.fill("#card", CARD)
    submit(page, email, name="山田 太郎", company="Example KK")
    sent = beacons.wait(page, lambda b: any(x["type"] == "identify" for x in b), "identify")

    # What left the browser: the email, name and company, nothing else of the form.
    [identify] = [b for b in sent if b["type"] == "identify"]
    assert identify["traits"] == {"email": email, "name": "山田 太郎", "company": "Example KK"}
    assert (identify["vid"], identify["form"]) == (vid, "contact-form")
    assert "token" not in identify
    assert len(beacons.bodies) == 5  # (captured: the checks below mean something)
    for secret in (PASSWORD, HIDDEN, CARD):
        assert all(secret not in body for body in beacons.bodies), secret
    assert all(email not in body for body in beacons.bodies if '"identify"' not in body)

    lead = lead_of(sp, email)
    assert (lead["email"], lead["name"], lead["company"]) == (email, "山田 太郎", "Example KK")
    assert lead["fields"] == {}
    assert [(v["visitor"], v["evidence"]) for v in lead["visitors"]] == [(vid, "form")]
    assert lead["first_touch"]["landing_page"] == f"{origin}/read/one"

    visit(page, f"{origin}/read/after", db)  # browsing on as a known lead
    items = timeline(sp, lead["id"])
    events = kind(items, "event")
    assert [(e["type"], e["url"].removeprefix(origin), e.get("name")) for e in events] == [
        ("pageview", "/read/one", None),
        ("pageview", "/read/two", None),
        ("pageview", "/read/three", None),
        ("pageview", "/contact/", None),
        ("identify", "/contact/", "contact-form"),
        ("pageview", "/read/after", None),
    ]  # fmt: skip
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert {e["visitor"] for e in events} == {vid}
    [identified] = kind(items, "identified")
    assert identified["visitor"] == vid
    assert identified["at"] == events[4]["at"]  # linked at the identify event's time
    assert email not in json.dumps(events)  # the traits never reach the events
    context.close()


def test_same_email_typed_full_width_on_another_device_joins_the_lead(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    origin, db = sp.origin, sp.dep.database_url
    office = browser.new_context(user_agent=CHROME_UA)
    page = office.new_page()
    office_vid = visit(page, f"{origin}/contact/", db)
    submit(page, "hanako@example.jp", name="Hanako Sato")
    lead = lead_of(sp, "hanako@example.jp")
    office.close()

    phone = browser.new_context(user_agent=CHROME_UA)  # another device: another visitor
    beacons = Beacons(phone, sp.dep.url)
    page = phone.new_page()
    visit(page, f"{origin}/read/on-the-train", db)
    phone_vid = visit(page, f"{origin}/jpform/", db)
    assert phone_vid != office_vid
    submit(page, "ＨＡＮＡＫＯ＠ＥＸＡＭＰＬＥ．ＪＰ")  # an IME in full-width mode
    sent = beacons.wait(page, lambda b: any(x["type"] == "identify" for x in b), "identify")
    assert [b["traits"] for b in sent if b["type"] == "identify"] == [
        {"email": "ＨＡＮＡＫＯ＠ＥＸＡＭＰＬＥ．ＪＰ"}]  # fmt: skip

    def linked(response: Any) -> bool:
        return response.status_code == 200 and len(response.json()["visitors"]) == 2

    detail = poll(lambda: sp.api(f"/leads/{lead['id']}"), linked, "the second visitor").json()
    assert {v["visitor"] for v in detail["visitors"]} == {office_vid, phone_vid}
    assert detail["email"] == "hanako@example.jp"
    assert detail["name"] == "Hanako Sato"
    for typed in ("ＨＡＮＡＫＯ＠ＥＸＡＭＰＬＥ．ＪＰ", "Hanako@Example.JP", "hanako@example.jp"):
        assert sp.api("/leads/lookup", email=typed).json()["id"] == lead["id"]
    listed = sp.api("/leads").json()["leads"]
    assert [x["id"] for x in listed if x["email"] == "hanako@example.jp"] == [lead["id"]]

    events = kind(timeline(sp, lead["id"]), "event")
    phone_events = [(e["type"], e["url"].removeprefix(origin))
                    for e in events if e["visitor"] == phone_vid]  # fmt: skip
    assert phone_events == [
        ("pageview", "/read/on-the-train"),
        ("pageview", "/jpform/"),
        ("identify", "/jpform/"),
    ]
    assert {e["visitor"] for e in events} == {office_vid, phone_vid}
    phone.close()


def test_shared_computer_keeps_two_peoples_histories_apart(
    browser: Any, sites_pages: SitePages
) -> None:
    sp = sites_pages
    origin, db = sp.origin, sp.dep.database_url
    context = browser.new_context(user_agent=CHROME_UA)
    page = context.new_page()
    vid = visit(page, f"{origin}/contact/", db)
    submit(page, "person.a@example.jp", name="Person A")
    lead_a = lead_of(sp, "person.a@example.jp")
    visit(page, f"{origin}/read/a-only", db)

    visit(page, f"{origin}/contact/", db)  # person B sits down at the same browser
    submit(page, "person.b@example.jp", name="Person B")
    lead_b = lead_of(sp, "person.b@example.jp")
    assert lead_b["id"] != lead_a["id"]
    assert visit(page, f"{origin}/read/b-only", db) == vid  # one browser, one visitor id

    items_a, items_b = timeline(sp, lead_a["id"]), timeline(sp, lead_b["id"])
    [identified_b] = kind(items_b, "identified")
    switched_at = identified_b["at"]
    [identified_a] = kind(items_a, "identified")
    assert identified_a["ended_at"] == switched_at
    assert identified_b["ended_at"] is None
    events_a, events_b = kind(items_a, "event"), kind(items_b, "event")
    assert all(e["at"] < switched_at for e in events_a)
    assert all(e["at"] >= switched_at for e in events_b)
    assert [(e["type"], e["url"].removeprefix(origin)) for e in events_a] == [
        ("pageview", "/contact/"), ("identify", "/contact/"), ("pageview", "/read/a-only"),
        ("pageview", "/contact/")]  # fmt: skip
    assert [(e["type"], e["url"].removeprefix(origin)) for e in events_b] == [
        ("identify", "/contact/"), ("pageview", "/read/b-only")]  # fmt: skip
    assert events_b[0]["at"] == switched_at
    detail_a = sp.api(f"/leads/{lead_a['id']}").json()
    assert [(v["visitor"], v["ended_at"]) for v in detail_a["visitors"]] == [(vid, switched_at)]
    context.close()


def test_shared_computer_first_touch_is_the_second_persons_own(
    browser: Any, sites_pages: SitePages
) -> None:
    """The lead's first and last touch (landing page, campaign) come only from browsing
    its link covers: never from the earlier person's page views on the same browser."""
    sp = sites_pages
    origin, db = sp.origin, sp.dep.database_url
    context = browser.new_context(user_agent=CHROME_UA)
    page = context.new_page()
    visit(page, f"{origin}/read/a-private-page", db)
    visit(page, f"{origin}/contact/", db)
    submit(page, "first.user@example.jp")
    lead_of(sp, "first.user@example.jp")
    visit(page, f"{origin}/contact/", db)
    submit(page, "second.user@example.jp")
    lead_b = lead_of(sp, "second.user@example.jp")
    [identified_b] = kind(timeline(sp, lead_b["id"]), "identified")
    # B's own browsing starts at B's identification: A's landing page is not B's.
    for touch in (lead_b["first_touch"], lead_b["last_touch"]):
        assert touch is None or touch["at"] >= identified_b["at"], touch
    context.close()
