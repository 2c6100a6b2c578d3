"""The console driven in real Chromium as each role: legal finds a request, exports,
erases after typing the confirmation, sees the audit entries and verifies the chain;
admin creates a site and an API key, registers a webhook and sees its delivery;
marketing is refused legal's pages. Every page visited is kept as a screenshot
(tmp/artifacts/console/) and must run without a console error (a CSP violation)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.console_site import Receiver, Watched
from tests.conftest import Deployment
from tests.console import console_deployment
from tests.waiting import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from console_deployment(tmp_path_factory.mktemp("console-browser"))


def seed_lead(dep: Deployment, email: str) -> None:
    vid = secrets.token_hex(16)
    consent = dep.beacon(vid=vid, type="consent", consent={"analytics": True, "marketing": True},
                         policy="privacy-2026-04")  # fmt: skip
    assert dep.post(consent).status_code == 204
    assert dep.post(dep.beacon(vid=vid, title="料金プラン")).status_code == 204
    traits = {"email": email, "name": "山田 太郎", "company": "足あと商事"}
    identify = dep.beacon(vid=vid, type="identify", form="contact", traits=traits)
    assert dep.post(identify).status_code == 204


def test_legal_exports_erases_and_verifies_the_audit_chain(browser: Any, dep: Deployment) -> None:
    email = f"hanako.{secrets.token_hex(3)}@example.jp"
    seed_lead(dep, email)
    legal = Watched(browser, dep.url)
    page = legal.page
    try:
        legal.sign_in("legal@example.jp")
        assert page.locator("#events-today").inner_text().strip() != "0"
        legal.shot("legal-home")
        legal.go("/admin/consent")  # by email: a POST, never in the address
        page.fill("input[name=q]", email)
        with page.expect_navigation():
            page.click("form[action='/admin/consent'] button")
        assert email not in page.url
        assert page.locator("#receipts tbody tr").count() >= 1
        assert "privacy-2026-04" in page.locator("#receipts").inner_text()
        legal.shot("legal-consent")

        legal.go("/admin/requests")  # a new export request, found by email
        page.select_option("select[name=kind]", "export")
        page.fill("input[name=value]", email)
        page.click("form[action='/admin/requests'] button")
        page.wait_for_url(re.compile(r".*/admin/requests/pr_[0-9a-f]+$"))
        legal.shot("legal-export-request")
        with page.expect_download() as download:
            page.click("#download")
        bundle = json.loads(Path(download.value.path()).read_text())
        assert email in json.dumps(bundle, ensure_ascii=False)
        legal.go(page.url.removeprefix(dep.url))
        assert page.locator("#status").inner_text() == "完了"

        legal.go("/admin/requests")  # an erasure, behind the typed confirmation
        page.select_option("select[name=kind]", "erase")
        page.fill("input[name=value]", email)
        page.click("form[action='/admin/requests'] button")
        page.wait_for_url(re.compile(r".*/admin/requests/pr_[0-9a-f]+$"))
        subject = page.locator("#subject").inner_text()
        page.fill("input[name=confirm]", "ld_wrong")
        with page.expect_navigation():
            page.click("#erase")
        assert page.locator("p.error").is_visible()
        page.fill("input[name=confirm]", subject)
        legal.shot("legal-erase-request")
        with page.expect_navigation():
            page.click("#erase")
        assert page.locator("#status").inner_text() == "完了"
        legal.shot("legal-erased")

        legal.go("/admin/requests")
        assert page.locator("#queue tbody tr").count() == 2
        legal.shot("legal-requests")
        legal.go(f"/admin/audit?subject={subject}")
        actions = page.locator("#audit tbody").inner_text()
        for action in ("privacy.erase", "privacy.export", "console.consent.read"):
            assert action in actions
        page.click("#verify")
        page.wait_for_selector("#verdict")
        assert "チェーンは完全です" in page.locator("#verdict").inner_text()
        legal.shot("legal-audit")
        for path in ("/admin/retention", "/admin/ledger", "/admin/account"):
            assert legal.go(path).status == 200
            legal.shot("legal-" + path.rsplit("/", 1)[1])
        assert page.locator("body").inner_text().count(email) == 0  # no page kept the email
        assert legal.errors == []
        assert legal.dialogs == []
    finally:
        legal.close()


def test_admin_creates_a_site_a_key_and_a_webhook_and_sees_its_delivery(
    browser, dep: Deployment
) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver()
    httpd = receiver.serve()
    admin = Watched(browser, dep.url)
    page = admin.page
    try:
        admin.sign_in("admin@example.jp")
        admin.go("/admin/account")  # this admin reads the console in English
        page.select_option("select[name=language]", "en")
        page.fill("input[name=time_zone]", "Europe/Berlin")
        with page.expect_navigation():
            page.click("form:has(input[value=preferences]) button")
        assert page.locator("h1").inner_text() == "Account"

        admin.go("/admin/sites")
        page.fill("input[name=name]", "Corporate site")
        page.fill("textarea[name=origins]", "https://www.example.co.jp\nhttps://example.co.jp")
        page.select_option("select[name=consent]", "opt-in")
        page.click("form[action='/admin/sites'] button")
        snippet = page.locator("#snippet").inner_text()
        assert 'data-site="' in snippet
        assert page.locator("#identify-secret").inner_text()
        assert "connect-src 'self' http://127.0.0.1" in page.locator("#site-csp").inner_text()
        admin.shot("admin-site")
        page.click("button[data-copy=snippet]")

        admin.go("/admin/keys")
        page.fill("input[name=name]", "Marketo sync")
        page.check("input[value=read]")
        page.click("form[action='/admin/keys'] button")
        secret = page.locator("#new-key").inner_text()
        admin.shot("admin-keys")
        api = httpx.get(f"{dep.url}/api/v1/leads", headers={"Authorization": f"Bearer {secret}"})
        assert api.status_code == 200
        admin.go("/admin/keys")
        assert "Marketo sync" in page.locator("#keys").inner_text()
        assert page.locator("#new-key").count() == 0  # shown once only

        admin.go("/admin/webhooks")
        page.fill("input[name=url]", receiver.url)
        page.click("form[action='/admin/webhooks'] button")
        assert re.fullmatch(r"[0-9a-f]{64}", page.locator("#new-secret").inner_text())
        page.click("text=Open the new endpoint")
        page.click("#test-send")
        wait_until(lambda: any(h.get("ashiato-event") == "webhook.test" for h in receiver.seen),
                   what="the test delivery at the receiver")  # fmt: skip

        def delivered() -> bool:
            page.reload()
            return page.locator("#deliveries .delivered").count() >= 1

        wait_until(delivered, what="the delivery shown as delivered")
        admin.shot("admin-webhook")
        page.click("#deliveries button")  # redeliver
        wait_until(lambda: len(receiver.seen) >= 2, what="the redelivery")
        for path in ("/admin/", "/admin/sites", "/admin/webhooks", "/admin/users"):
            admin.go(path)
            admin.shot("admin-" + (path.removeprefix("/admin/") or "home"))
        assert admin.errors == []
        assert admin.dialogs == []
    finally:
        admin.close()
        httpd.shutdown()


def test_marketing_is_refused_legal_and_admin_pages(browser: Any, dep: Deployment) -> None:
    marketing = Watched(browser, dep.url)
    try:
        marketing.sign_in("marketing@example.jp")
        for hidden in ("/admin/requests", "/admin/audit", "/admin/keys", "/admin/users"):
            assert marketing.page.locator(f"nav a[href='{hidden}']").count() == 0
        for path in ("/admin/requests", "/admin/keys"):
            assert marketing.go(path).status == 403
        marketing.shot("marketing-refused")
        assert marketing.errors == []
    finally:
        marketing.close()
