"""The site's CMP and a strict CSP, in real Chromium: a stub IAB TCF CMP and gtag's
Consent Mode decide on an opt-in site (nothing is sent before they grant; the receipts
name their source); the tag works under a CSP without 'unsafe-inline'; the 外部送信
notice lists every field the tag was seen sending."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import PageHandler
from tests.browser.helpers import Beacons, open_page, poll, stored_events, wait_cookie
from tests.conftest import deployment_env
from tests.servers import CHROME_UA, Server, cli_json, free_port, with_store
from tests.tcf_strings import tc_string
from tracker.storage.records import ConsentReceipt

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
STUB = "window.ashiato=window.ashiato||function(){(ashiato.q=ashiato.q||[]).push(arguments)}"
STUB_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STUB.encode()).digest()).decode()
NONCE = secrets.token_urlsafe(16)


@dataclass
class World:
    """One collector with an opt-in site that reads a CMP (TCF and Consent Mode) and a
    notice site, both on the page server's origin; and every beacon the tests saw."""

    server: Server
    database_url: str
    origin: str
    cmp_site: str
    notice_site: str
    seen_by: list[Beacons] = field(default_factory=list)
    """Every context's beacons, for the notice's test."""

    def receipts(self, vid: str) -> list[ConsentReceipt]:
        return with_store(self.database_url, lambda s: s.consent_receipts_of([vid]))

    def watch(self, context: Any) -> Beacons:
        beacons = Beacons(context, self.server.url)
        self.seen_by.append(beacons)
        return beacons


class CspPages(PageHandler):
    """PageHandler, and ``/csp?form=file|hash|blocked`` answered with a strict CSP: the
    stub as the file ``/s.js`` (nonce form), as the inline snippet allowed by its hash,
    or as the inline snippet the CSP does not allow."""

    def do_GET(self) -> None:
        if not self.path.startswith("/csp"):
            super().do_GET()
            return
        form = self.path.partition("form=")[2]
        allow = f"'nonce-{NONCE}'" + (f" '{STUB_HASH}'" if form == "hash" else "")
        stub = (f'<script src="{self.collector}/s.js"></script>' if form == "file"
                else f"<script>{STUB}</script>")  # fmt: skip
        body = (ROOT / "tests/browser/pages/csp.html").read_text()
        fill = {"{STUB}": stub, "{NONCE}": NONCE, "{COLLECTOR}": self.collector,
                "{SITE}": self.site}  # fmt: skip
        for placeholder, value in fill.items():
            body = body.replace(placeholder, value)
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; script-src {self.collector} {allow}; "
            f"connect-src {self.collector}; base-uri 'none'",
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """SQLite only: what is tested here is the browser's side and the pipeline's."""
    tmp = tmp_path_factory.mktemp("cmp-csp")
    port, server_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{port}"
    env = deployment_env(tmp, "sqlite", ASHIATO_PUBLIC_URL=f"http://127.0.0.1:{server_port}")
    cmp = cli_json(env, "site", "add", "cmp", "--origin", origin, "--consent", "opt-in",
                   "--cmp", "tcf", "--cmp", "gcm")  # fmt: skip
    notice = cli_json(env, "site", "add", "notice", "--origin", origin, "--consent", "notice")
    server = Server(env, tmp / "server.log", port=server_port).start()
    fill = {"{CMP_SNIPPET}": cmp["snippet"]}
    handler = type("Handler", (CspPages,), {"collector": server.url,
                                            "site": notice["site_key"], "fill": fill})  # fmt: skip
    httpd = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield World(server, env["ASHIATO_DATABASE_URL"], origin, cmp["site_key"], notice["site_key"])
    httpd.shutdown()
    server.stop()
    assert "Traceback" not in server.logs()


def consents(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in sent if b["type"] == "consent"]


def tcf_data(status: str, purposes: list[int]) -> str:
    data = {"tcString": tc_string(purposes), "gdprApplies": True, "eventStatus": status,
            "cmpId": 300, "tcfPolicyVersion": 4, "listenerId": 1,
            "purpose": {"consents": {str(p): True for p in purposes}, "legitimateInterests": {}},
            "publisher": {"consents": {}, "legitimateInterests": {}}}  # fmt: skip
    return f"cmp.fire({json.dumps(data)})"


def test_a_tcf_cmp_grants_and_refuses_and_the_receipts_say_tcf(browser: Any, world: World) -> None:
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = world.watch(context)
    page = context.new_page()
    open_page(page, f"{world.origin}/cmp/")
    page.evaluate("ashiato('event', 'held_event')")
    page.evaluate(tcf_data("cmpuishown", []))  # the banner is up: no decision yet
    beacons.none_during(page, 700, start=0)
    assert context.cookies() == []

    page.evaluate(tcf_data("useractioncomplete", [1, 8]))  # analytics yes, marketing no
    sent = beacons.wait(page, lambda b: len(b) >= 3, "the grant and the held events")
    assert [b["type"] for b in sent] == ["consent", "pageview", "event"]
    grant = sent[0]
    assert (grant["source"], grant["signal"]) == ("tcf", tc_string([1, 8]))
    assert grant["consent"] == {"analytics": True, "marketing": False}
    vid = grant["vid"]
    poll(lambda: stored_events(world.database_url, vid), lambda e: len(e) == 2, "held events")

    # A returning visitor's CMP says the same on load: no second receipt.
    start = beacons.count
    page.reload()
    page.wait_for_function("window.ashiato && window.ashiato.l", timeout=5000)
    beacons.wait(page, lambda b: len(b) >= 1, "the page view", start=start)
    page.evaluate(tcf_data("tcloaded", [1, 8]))
    beacons.none_during(page, 300, start=beacons.count)
    assert [b["type"] for b in beacons.beacons(start)] == ["pageview"]

    page.evaluate(tcf_data("useractioncomplete", []))  # withdrawn in the CMP
    beacons.wait(page, lambda b: len(consents(b)) == 1, "the withdrawal", start=start)
    receipts = poll(lambda: world.receipts(vid), lambda r: len(r) == 2, "two receipts")
    assert [(r.source, r.analytics, r.marketing) for r in receipts] == [
        ("tcf", True, False), ("tcf", False, False)]  # fmt: skip
    signal = receipts[0].signal
    assert signal is not None
    assert (signal["cmp_id"], signal["tcf_policy_version"]) == (300, 4)
    context.close()


def test_consent_mode_default_denied_then_granted_and_the_receipts_say_gcm(
    browser: Any, world: World
) -> None:
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = world.watch(context)
    page = context.new_page()
    open_page(page, f"{world.origin}/cmp/")
    page.evaluate("ashiato('event', 'held_event')")
    beacons.none_during(page, 700, start=0)  # denied by default: nothing goes out
    assert context.cookies() == []

    page.evaluate("gtag('consent', 'update', {analytics_storage: 'granted'})")
    sent = beacons.wait(page, lambda b: len(b) >= 3, "the grant and the held events")
    assert [b["type"] for b in sent] == ["consent", "pageview", "event"]
    assert (sent[0]["source"], sent[0]["consent"]) == ("gcm", {"analytics": True,
                                                               "marketing": False})  # fmt: skip
    vid = sent[0]["vid"]
    page.evaluate("gtag('consent', 'update', {ad_storage: 'granted', ad_user_data: 'granted',"
                  " ad_personalization: 'granted'})")  # fmt: skip
    receipts = poll(lambda: world.receipts(vid), lambda r: len(r) == 2, "two receipts")
    assert [(r.source, r.analytics, r.marketing) for r in receipts] == [
        ("gcm", True, False), ("gcm", True, True)]  # fmt: skip
    assert receipts[0].signal == {"states": {"analytics_storage": "granted", "ad_storage": "denied",
                                             "ad_user_data": "denied",
                                             "ad_personalization": "denied"}}  # fmt: skip
    context.close()


def csp_visit(browser: Any, world: World, form: str) -> tuple[Any, Any, Beacons, list[str]]:
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = world.watch(context)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(f"{world.origin}/csp?form={form}")
    return context, page, beacons, console


@pytest.mark.parametrize("form", ["file", "hash"])
def test_a_strict_csp_blocks_nothing_and_early_calls_arrive(
    browser: Any, world: World, form: str
) -> None:
    context, page, beacons, console = csp_visit(browser, world, form)
    page.wait_for_function("window.ashiato && window.ashiato.l", timeout=5000)
    assert page.evaluate("window.queued") == 1  # queued by the stub before the tag came
    sent = beacons.wait(page, lambda b: {"event", "pageview"} <= {x["type"] for x in b},
                        "the early event and the page view")  # fmt: skip
    assert [b["name"] for b in sent if b["type"] == "event"] == ["early_call"]
    assert page.evaluate("window.violations") == []
    assert not [m for m in console if "Content Security Policy" in m]
    context.close()


def test_the_inline_snippet_is_blocked_without_its_nonce_or_hash(
    browser: Any, world: World
) -> None:
    """The control: the same page and CSP, the inline stub not allowed."""
    context, page, beacons, _ = csp_visit(browser, world, "blocked")
    page.wait_for_function("window.violations.length > 0", timeout=5000)
    assert page.evaluate("window.queued") is None  # the early call was lost
    page.wait_for_function("window.ashiato && window.ashiato.l", timeout=5000)
    sent = beacons.wait(page, bool, "the page view")
    assert "event" not in {b["type"] for b in sent}
    context.close()


def test_the_readme_gives_the_stub_hash_and_the_snippet_is_the_stub() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"'{STUB_HASH}'" in readme
    assert f"<script>{STUB}</script>" in readme


def test_the_disclosure_lists_every_field_the_tag_sent(browser: Any, world: World) -> None:
    """Every beacon field seen in this module's sessions (and this one's: a page view, a
    link click, an event, a CMP's consent, an identification) is in the 外部送信 notice."""
    context = browser.new_context(user_agent=CHROME_UA)
    beacons = world.watch(context)
    page = context.new_page()
    open_page(page, f"{world.origin}/csp?form=file")
    page.evaluate("ashiato('event', 'signup', {plan: 'pro'})")
    page.evaluate("ashiato('consent', {analytics: true, marketing: true, source: 'gcm',"
                  " signal: 'analytics_storage=granted,ad_storage=granted'})")  # fmt: skip
    page.evaluate("ashiato('identify', {email: 'disclosed@example.com', company: 'Example'})")
    beacons.wait(page, lambda b: "identify" in {x["type"] for x in b}, "the identification")
    wait_cookie(context, present=True)
    context.close()

    seen = {key for watched in world.seen_by for b in watched.beacons() for key in b}
    assert {"site", "vid", "sid", "url", "traits", "source", "signal", "consent"} <= seen
    notice = httpx.get(f"{world.server.url}/disclosure/{world.notice_site}.json").json()
    ashiato = notice["recipients"][0]
    assert ashiato["service_name"] == "ashiato"
    missing = seen - set(ashiato["fields"])
    assert not missing, f"the tag sends fields the notice does not list: {missing}"
    page_ja = httpx.get(f"{world.server.url}/disclosure/{world.notice_site}").text
    for item in ashiato["items"]:
        assert item["ja"] in page_ja
