"""The stored-XSS run over the marketing pages (called by ``test_console_xss``): the
hostile lead (script in its name, attribute breakers and an RTL override in its
company, hostile titles, URLs, UTM values and user agent) is made hot by a scoring rule
with a hostile name, gets a twin for the 名寄せ queue, and every marketing page is
visited as marketing with hostile filters and searches: no dialog, no script error,
no CSP violation, and the values show as text."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from tests.browser.console_site import Watched
from tests.conftest import Deployment

RULES = """
[grades]
hot = 100
warm = 40

[[rule]]
id = "form"
name = {name}
when = {{ type = "identify" }}
points = 150
"""


def _cli(dep: Deployment, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "tracker", *args], env=dep.env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def make_hot_with_a_twin(dep: Deployment, *, script: str, breaker: str, rtl: str) -> None:
    rules = Path(dep.tmp) / "hostile-rules.toml"
    rules.write_text(RULES.format(name=json.dumps(script)), encoding="utf-8")
    _cli(dep, "scoring", "load", str(rules), "--site", dep.site_key)
    twin = dep.beacon(vid=secrets.token_hex(16), type="identify", form=breaker,
                      traits={"email": "hostile.twin@example.jp", "name": script,
                              "company": breaker + rtl})  # fmt: skip
    assert dep.post(twin).status_code == 204
    _cli(dep, "scoring", "rescore", "--site", dep.site_key)


def visit_marketing_pages(
    marketer: Watched, dep: Deployment, vid: str, *, payloads: dict[str, str]
) -> None:
    script, breaker, svg, js_url, rtl = (payloads[k] for k in
                                         ("script", "breaker", "svg", "js_url", "rtl"))  # fmt: skip
    make_hot_with_a_twin(dep, script=script, breaker=breaker, rtl=rtl)
    marketer.sign_in("marketing@example.jp")
    page = marketer.page
    hostile = "&".join(f"{k}={quote(v)}" for k, v in
                       (("campaign", js_url), ("page", script), ("source", breaker),
                        ("medium", svg)))  # fmt: skip
    for path in ("/admin/dashboard?range=30d", f"/admin/dashboard?range=30d&{hostile}",
                 f"/admin/dashboard?range=custom&from={quote(breaker)}&to={quote(script)}",
                 f"/admin/dashboard?site={quote(breaker)}&range={quote(svg)}",
                 f"/admin/leads?q={quote(breaker)}", f"/admin/leads?q={quote(script)}",
                 f"/admin/leads?grade={quote(breaker)}&site={quote(svg)}",
                 f"/admin/duplicates?confidence={quote(script)}",
                 f"/admin/visitors/{vid}"):  # fmt: skip
        marketer.go(path)
    marketer.go(f"/admin/dashboard?range=30d&site={dep.site_key}")
    assert js_url in page.locator("#top-campaigns").inner_text()
    assert breaker in page.locator("#top-sources").inner_text()
    page.click(f"#top-campaigns a:text-is('{js_url}')")
    assert js_url in page.locator(".active-filter").inner_text()
    marketer.go("/admin/leads")
    assert breaker + rtl in page.locator("#leads").inner_text()
    marketer.go("/admin/duplicates")
    assert script in page.locator(".pair").first.inner_text()
    marketer.shot("xss-duplicates")
    marketer.go("/admin/leads/hot")
    assert page.locator("#hot tbody tr").count() == 2  # the hostile lead and its twin
    marketer.go(f"/admin/leads?q={quote(payloads['email'])}")
    page.click("#leads a")
    page.wait_for_url(re.compile(r".*/admin/leads/ld_[0-9a-f]+$"))
    assert script in page.locator("#lead-name").inner_text()
    assert script in page.locator("#why-entries").inner_text()  # the rule's name
    marketer.shot("xss-lead")
    page.click("#open-timeline")
    page.wait_for_url(re.compile(r".*/timeline$"))
    assert script + svg in page.locator("#timeline").inner_text()  # the page's title
    marketer.shot("xss-timeline")
    assert marketer.dialogs == []
    assert marketer.errors == []
