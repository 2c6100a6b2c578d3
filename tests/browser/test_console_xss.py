"""Stored and reflected script injection into the console, in real Chromium.

Hostile values — script tags, ``javascript:`` URLs, attribute breakers, an RTL override —
go into everything a visitor, a site's backend or an operator can set: a lead's name and
company, page titles, URLs and UTM values, user agents, consent policy versions, site
names, API key names, webhook URLs, user emails, and the query strings and form fields
the console echoes. Every page is then visited as legal and as admin: no dialog opens,
no script error or CSP violation is logged, and the values show as text. A last check
proves the watch works: a payload put into the page by hand is blocked by the CSP, and
that is the one violation seen."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.console_site import Watched
from tests.browser.marketing_xss import visit_marketing_pages
from tests.conftest import SITE_ORIGIN, Deployment
from tests.console import add_user, console_deployment
from tests.servers import CHROME_UA, cli_json

pytestmark = pytest.mark.browser

SCRIPT = "<script>alert('script')</script>"
BREAKER = '"><img src=x onerror=alert(1)>'
SVG = "<svg/onload=alert(2)>"
JS_URL = "javascript:alert(3)"
RTL = "\u202egnp.exe"
EMAIL = "hostile.lead@example.jp"


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from console_deployment(tmp_path_factory.mktemp("console-xss"))


def seed(dep: Deployment) -> tuple[str, str]:
    """Hostile values everywhere; the hostile site's key and the lead's visitor id."""
    site = cli_json(dep.env, "site", "add", f"{BREAKER}{RTL}", "--origin", SITE_ORIGIN,
                    "--consent", "notice", "--policy-version", SVG)  # fmt: skip
    vid = secrets.token_hex(16)
    url = f"{SITE_ORIGIN}/{quote(SCRIPT)}?utm_source={quote(BREAKER)}&utm_campaign={quote(JS_URL)}"
    hostile_ua = f"{CHROME_UA} {SCRIPT}"
    for beacon in (
        dep.beacon(vid=vid, type="consent", consent={"analytics": True, "marketing": True},
                   policy=BREAKER),
        dep.beacon(vid=vid, url=url, title=SCRIPT + SVG, referrer=JS_URL),
        dep.beacon(vid=vid, type="identify", form=BREAKER, traits={
            "email": EMAIL, "name": SCRIPT, "company": BREAKER + RTL}),
    ):  # fmt: skip
        assert dep.post(beacon, **{"User-Agent": hostile_ua}).status_code == 204
    key = cli_json(dep.env, "apikey", "create", SCRIPT, "--scope", "admin")["key"]
    hook = httpx.post(f"{dep.url}/api/v1/webhooks", headers={"Authorization": f"Bearer {key}"},
                      json={"url": f'http://127.0.0.1:9/"{SVG}?x={SCRIPT}'})  # fmt: skip
    assert hook.status_code == 201, hook.text
    add_user(dep.env, f"{SVG}@example.jp", "marketing")
    return site["site_key"], vid


def test_no_hostile_value_runs_on_any_page(browser: Any, dep: Deployment) -> None:
    site_key, vid = seed(dep)
    legal = Watched(browser, dep.url)
    admin = Watched(browser, dep.url)
    try:
        legal.sign_in("legal@example.jp")
        legal.go("/admin/requests")  # a request about the hostile lead, by visitor id
        legal.page.select_option("select[name=by]", "visitor")
        legal.page.fill("input[name=value]", vid)
        legal.page.click("form[action='/admin/requests'] button")
        legal.page.wait_for_url(re.compile(r".*/admin/requests/pr_[0-9a-f]+$"))
        request_path = legal.page.url.removeprefix(dep.url)
        pages = [
            "/admin/", "/admin/requests", request_path, f"/admin/consent?by=visitor&q={vid}",
            f"/admin/consent?by=email&q={quote(EMAIL)}", "/admin/retention",  # ignored: GET
            f"/admin/audit?action={quote(BREAKER)}&actor={quote(SCRIPT)}", "/admin/audit",
            "/admin/ledger", "/admin/account", f"/admin/consent?by=email&q={quote(BREAKER)}",
            f"/admin/signin?next={quote('/admin/' + BREAKER)}",
        ]  # fmt: skip
        for path in pages:
            legal.go(path)
        legal.go(f"/admin/consent?by=visitor&q={vid}")
        receipts = legal.page.locator("#receipts").inner_text()
        assert BREAKER in receipts  # the policy version, shown as text
        legal.shot("xss-consent")

        admin.sign_in("admin@example.jp")
        admin.go("/admin/sites")  # an invalid origin: the error echoes it, escaped
        admin.page.fill("input[name=name]", SCRIPT)
        admin.page.fill("textarea[name=origins]", SCRIPT)
        with admin.page.expect_navigation():
            admin.page.click("form[action='/admin/sites'] button")
        assert SCRIPT in admin.page.locator("main").inner_text()
        admin.go("/admin/keys")
        admin.page.fill("input[name=name]", BREAKER)
        admin.page.check("input[value=read]")
        with admin.page.expect_navigation():
            admin.page.click("form[action='/admin/keys'] button")
        for path in ("/admin/", "/admin/sites", f"/admin/sites/{site_key}", "/admin/keys",
                     "/admin/webhooks", "/admin/users", "/admin/account"):  # fmt: skip
            admin.go(path)
        admin.go("/admin/webhooks")
        admin.page.click("#hooks a")
        assert SCRIPT in admin.page.locator("#hook-url").inner_text()
        admin.shot("xss-webhook")
        admin.go("/admin/sites")
        assert BREAKER + RTL in admin.page.locator("#sites").inner_text()
        admin.go("/admin/users")
        assert f"{SVG}@example.jp" in admin.page.locator("#users").inner_text()
        admin.shot("xss-users")
        admin.go("/admin/keys")
        assert SCRIPT in admin.page.locator("#keys").inner_text()  # made by the CLI
        assert BREAKER in admin.page.locator("#keys").inner_text()  # made on the page

        marketing = Watched(browser, dep.url)  # the marketing pages (marketing_xss)
        try:
            hostile = {"script": SCRIPT, "breaker": BREAKER, "svg": SVG, "js_url": JS_URL,
                       "rtl": RTL, "email": EMAIL}  # fmt: skip
            visit_marketing_pages(marketing, dep, vid, payloads=hostile)
        finally:
            marketing.close()
        for watched in (legal, admin):
            assert watched.dialogs == []
            assert watched.errors == []

        # The watch itself: a payload that reaches the DOM is refused by the CSP.
        admin.page.evaluate(
            "document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=\"alert(9)\">')"
        )
        admin.page.wait_for_timeout(500)  # the image's error event fires, and is refused
        assert admin.dialogs == []
        assert len(admin.errors) == 1
        assert "Content Security Policy" in admin.errors[0]
    finally:
        legal.close()
        admin.close()
