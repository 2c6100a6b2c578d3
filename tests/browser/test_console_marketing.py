"""The marketing pages in real Chromium, in English and in Japanese: the 30-day
dashboard, a campaign filter, the hot lead opened from the hot list, why it is hot,
and its timeline with the pages it browsed anonymously before the form. Screenshots
of each page go to tmp/artifacts/console/; no page logs a script error or a CSP
violation."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.console_site import Watched
from tests.browser.marketing_data import (
    CAMPAIGN,
    HOT_EMAIL,
    HOT_NAME,
    Seeded,
    seed_history,
    seed_leads,
)
from tests.conftest import LOOPBACK_HOOKS, Deployment, make_deployment
from tests.console import add_users, signed_in
from tests.waiting import wait_until

pytestmark = pytest.mark.browser
WORDS = {
    "en": {"why": "Why this score", "anonymous": "anonymous, before identification"},
    "ja": {"why": "このスコアの理由", "anonymous": "匿名（名乗る前）"},
}


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Seeded]]:
    tmp = tmp_path_factory.mktemp("console-marketing")
    dep = make_deployment(tmp, backend="sqlite", ASHIATO_RATE_LIMIT_IP="0", **LOOPBACK_HOOKS)
    seeded = seed_history(dep)
    add_users(dep.env, ("marketing@example.jp", "marketing"), ("legal@example.jp", "legal"))
    dep.server.start()
    try:
        seed_leads(dep, seeded)
        client = signed_in(dep.url, "marketing@example.jp")
        wait_until(
            lambda: HOT_NAME in client.get("/admin/leads/hot").text,
            timeout=30,
            what="the hot lead scored",
        )
        yield dep, seeded
    finally:
        dep.server.stop()
    assert "Traceback" not in dep.server.logs()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_marketing_reads_the_dashboard_and_why_a_lead_is_hot(
    browser: Any, dep: tuple[Deployment, Seeded], language: str
) -> None:
    deployment, _ = dep
    marketer = Watched(browser, deployment.url)
    page, words = marketer.page, WORDS[language]
    try:
        marketer.sign_in("marketing@example.jp")
        assert page.locator("#marketing-start a").count() == 4  # where to start, on home
        marketer.go("/admin/account")  # each user chooses the console's language
        page.select_option("select[name=language]", language)
        page.click("form:has(input[value=preferences]) button[type=submit]")
        page.wait_for_selector(f"html[lang={language}]")

        marketer.go("/admin/dashboard?range=30d")
        assert page.locator("#traffic-chart svg.plot polyline").count() == 3
        assert page.locator("#traffic-chart circle").count() == 3 * 30
        unfiltered = int(page.locator("#total-sessions").inner_text())
        assert page.locator("#now a[href^='/admin/leads/ld_']").count() == 4  # today's forms
        marketer.shot(f"marketing-dashboard-{language}")
        page.click(f"#campaigns a:text-is('{CAMPAIGN}')")  # campaign -> leads, as a filter
        page.wait_for_url(re.compile(rf".*campaign={CAMPAIGN}.*"))
        assert "range=30d" in page.url
        assert CAMPAIGN in page.locator(".active-filter").inner_text()
        filtered = int(page.locator("#total-sessions").inner_text())
        assert 0 < filtered < unfiltered
        assert [t.strip() for t in page.locator("#top-campaigns td.name").all_inner_texts()] == [
            CAMPAIGN
        ]
        page.click("#top-pages a:text-is('/features')")  # a page filter on top of it
        assert "page=%2Ffeatures" in page.url
        assert f"campaign={CAMPAIGN}" in page.url
        assert int(page.locator("#total-sessions").inner_text()) <= filtered
        marketer.shot(f"marketing-dashboard-filtered-{language}")

        marketer.go("/admin/leads/hot")
        assert page.locator("#hot tbody tr").count() == 1
        marketer.shot(f"marketing-hot-{language}")
        page.click(f"#hot a:text-is('{HOT_NAME}')")
        page.wait_for_url(re.compile(r".*/admin/leads/ld_[0-9a-f]+$"))
        assert words["why"] in page.locator("#why h2").inner_text()
        why = page.locator("#why-entries tbody tr").all_inner_texts()
        assert any("料金ページを閲覧" in row and "/pricing/enterprise" in row for row in why)
        assert any("フォーム送信" in row for row in why)
        assert HOT_EMAIL in page.locator("#traits").inner_text()
        marketer.shot(f"marketing-lead-{language}")

        page.click("#open-timeline")
        page.wait_for_url(re.compile(r".*/timeline$"))
        assert CAMPAIGN in page.locator("#before-form").inner_text()  # how they first came
        form = page.locator("#timeline li.kind-form").first
        form_at = form.locator("time").get_attribute("datetime") or ""
        before = page.locator("#timeline li.kind-pageview.anonymous")
        pages = before.locator(".url").all_inner_texts()
        assert {"/pricing", "/pricing/enterprise", "/case-studies", "/features"} <= set(pages)
        assert all((t or "") <= form_at for t in before.locator("time").evaluate_all(
            "ts => ts.map(t => t.getAttribute('datetime'))"))  # fmt: skip
        assert words["anonymous"] in page.locator("#timeline .session.anonymous").first.inner_text()
        assert "anonymous" not in (form.get_attribute("class") or "")
        marketer.shot(f"marketing-timeline-{language}")

        assert marketer.dialogs == []
        assert marketer.errors == []
    finally:
        marketer.close()


def test_hot_leads_download_as_excel_ready_csv(
    browser: Any, dep: tuple[Deployment, Seeded]
) -> None:
    """The console's CSV is the CLI's: UTF-8 with a BOM, the hand-over columns."""
    deployment, seeded = dep
    marketer = Watched(browser, deployment.url)
    try:
        marketer.sign_in("marketing@example.jp")
        marketer.go("/admin/leads/hot")
        with marketer.page.expect_download() as info:
            marketer.page.click("#hot-csv")
        body = info.value.path().read_bytes()
        assert body.startswith("\ufeff".encode())
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert [(r["email"], r["grade"], r["first_touch_campaign"]) for r in rows] == [
            (HOT_EMAIL, "hot", CAMPAIGN)
        ]
        marketer.go(f"/admin/visitors/{seeded.anonymous_vid}")  # an anonymous visitor
        assert marketer.page.locator("#timeline li.kind-pageview").count() >= 1
        marketer.shot("marketing-visitor")
        marketer.go("/admin/duplicates")  # 名寄せ: the two 山田 太郎 share a phone number
        pair = marketer.page.locator(".pair").first
        assert "山田 太郎" in pair.inner_text()
        marketer.shot("marketing-duplicates")
        pair.locator("form[action='/admin/duplicates/merge'] button").click()
        marketer.page.wait_for_url(re.compile(r".*/admin/duplicates$"))
        assert "山田 太郎" not in marketer.page.locator("main").inner_text()
        assert marketer.errors == []
    finally:
        marketer.close()
