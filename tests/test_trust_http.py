"""What a hostile tester found on the HTTP surface, on a real server per backend: personal
data in campaign values and free text, the demo page's escaping and CSP, the pixel and
the visitor cookie, and the small protocol surprises (HEAD, Allow, gzip, metrics).

(The keep-alive slowloris is in test_http_deadlines.py, beside the other deadlines.)
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests import postgres
from tests.conftest import SITE_ORIGIN, Deployment, make_deployment
from tests.servers import CHROME_UA, all_events, cli_json, metric, with_store
from tracker.storage.records import Event

# A browser name the UA parser takes verbatim from the string (its CFNetwork rule).
HOSTILE_UA = "Mozilla/5.0 <img src=x onerror=alert(1)>/1.0 CFNetwork/1.0 Darwin/1"


@pytest.fixture(scope="module")
def dep(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A deployment with the demo pages on, and a site named ``demo``."""
    built = make_deployment(tmp_path_factory.mktemp("trust"), backend=backend,
                            ASHIATO_DEMO="true")  # fmt: skip
    cli_json(built.env, "site", "add", "demo", "--origin", SITE_ORIGIN, "--consent", "notice")
    built.server.start()
    yield built
    built.server.stop()
    assert "Traceback" not in built.server.logs()


def events_of(dep: Deployment, vid: str) -> list[Event]:
    return [e for e in with_store(dep.database_url, all_events) if e.vid == vid]


def site_key(dep: Deployment, name: str) -> str:
    sites = cli_json(dep.env, "site", "list")["sites"]
    return str(next(s["site_key"] for s in sites if s["name"] == name))


# -- personal data in campaign values, addresses and free text -------------------------


def test_emails_and_phone_numbers_are_scrubbed_by_value_from_every_stored_field(
    dep: Deployment,
) -> None:
    since = time.time()
    marker = secrets.token_hex(4)
    email = f"leak.{marker}@example.jp"
    a, b = secrets.randbelow(9000) + 1000, secrets.randbelow(9000) + 1000
    phone = f"090-{a}-{b}"
    vid = secrets.token_hex(16)
    url = (
        f"{SITE_ORIGIN}/call/{phone}?utm_source={quote(email)}&utm_medium=cpc"
        f"&utm_content={quote(f'+81 90 {a} {b}')}&gclid={quote(email)}&msclkid={phone}"
        f"&fbclid=IwAR0abc&ref={phone}&page=2#/thanks/{email}"
    )
    referrer = f"https://search.example/?utm_term={quote(email)}&q={quote(phone)}"
    page = dep.beacon(vid=vid, url=url, referrer=referrer,
                      title=f"Thanks {email}, we call {phone}")  # fmt: skip
    props = {"contact": email, "note": f"tel +81 90 {a} {b} or 090 {a} {b}", "count": 3}
    event = dep.beacon(vid=vid, type="event", name="signup", props=props, url=url)
    assert dep.post({"events": [page, event]}).status_code == 204
    pixel = httpx.get(f"{dep.url}/p.gif", params={"site": dep.site_key, "vid": vid,
                      "url": url, "title": f"Mail {email}"},
                      headers={"User-Agent": CHROME_UA})  # fmt: skip
    assert pixel.status_code == 200

    needles = [marker, f"{a}-{b}", f"{a}{b}", f"{a} {b}", f"{a}+{b}", f"{a}%20{b}"]
    stored = events_of(dep, vid)
    assert len(stored) == 3
    leaks = [n for n in needles if n in repr(stored)]
    assert not leaks, f"stored rows hold {leaks}"
    assert hits_on_disk(dep, needles, since) == []

    by_type = {e.type: e for e in stored if e.title != "Mail (email)"}  # /collect's two
    shown = by_type["pageview"]
    query = "utm_medium=cpc&fbclid=IwAR0abc&page=2"
    assert shown.url == f"{SITE_ORIGIN}/call/(phone)?{query}#/thanks/(email)"
    assert (shown.utm_source, shown.utm_medium, shown.utm_content) == (None, "cpc", None)
    assert shown.click_ids == {"fbclid": "IwAR0abc"}
    assert shown.referrer == "https://search.example/"
    assert shown.title == "Thanks (email), we call (phone)"
    assert by_type["event"].props == {
        "contact": "(email)", "note": "tel (phone) or (phone)", "count": 3
    }  # fmt: skip
    assert any(e.title == "Mail (email)" for e in stored)


def hits_on_disk(dep: Deployment, needles: list[str], since: float) -> list[str]:
    """``file: needle`` for each needle in the database's files (the WAL included)."""
    if dep.backend == "sqlite":
        files = list(Path(dep.database_url.removeprefix("sqlite:///")).parent.glob("ashiato.db*"))
        assert any(f.name.endswith("-wal") for f in files)  # the rows are still in the WAL
    else:
        hits = postgres.table_hits([dep.database_url], needles)
        if hits:
            return [f"{table}: {needle}" for table, needle in hits]
        files = postgres.files_of([dep.database_url], since)
    return [f"{f}: {n}" for f in files for n in needles if n.encode() in f.read_bytes()]


# -- the demo page: escaping and CSP -----------------------------------------------------


def test_demo_me_escapes_what_the_client_chose_and_every_html_page_has_a_strict_csp(
    dep: Deployment,
) -> None:
    demo_key = site_key(dep, "demo")
    vid = secrets.token_hex(16)
    beacon = {"site": demo_key, "type": "pageview", "vid": vid,
              "url": f"{SITE_ORIGIN}/x<script>alert(2)</script>"}  # fmt: skip
    posted = httpx.post(f"{dep.url}/collect", json=beacon, headers={"User-Agent": HOSTILE_UA})
    assert posted.status_code == 204
    me = httpx.get(f"{dep.url}/demo/me", headers={"Cookie": f"_ashiato_vid={vid}"})
    assert me.status_code == 200
    assert vid in me.text  # the page shows this visitor's events...
    assert "&lt;img src=x onerror=alert(1)&gt;" in me.text  # ...their browser, escaped
    assert "&lt;script&gt;alert(2)" in me.text
    assert "<img" not in me.text
    assert "<script>alert" not in me.text
    for page in (me, httpx.get(f"{dep.url}/demo/")):
        assert_strict_csp(page)


def assert_strict_csp(page: httpx.Response) -> None:
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    # Every inline script or style carries this response's nonce; no inline handlers.
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", page.text):
        assert "src=" in tag or f'nonce="{nonce.group(1)}"' in tag, tag
    handlers = [t for t in re.findall(r"<[^>]*>", page.text) if re.search(r"\son\w+\s*=", t)]
    assert handlers == []
    assert page.headers["x-content-type-options"] == "nosniff"


def test_demo_me_finds_the_visitor_by_the_collectors_own_cookie(dep: Deployment) -> None:
    vid = secrets.token_hex(16)
    beacon = dep.beacon(site=site_key(dep, "demo"), vid=vid)
    assert dep.post(beacon).status_code == 204
    me = httpx.get(f"{dep.url}/demo/me", headers={"Cookie": f"_ashiato_vid={vid}.s"})
    assert f"<code>{vid}</code>" in me.text


# -- the pixel ---------------------------------------------------------------------------


def test_pixel_records_the_view_under_the_server_set_cookie(dep: Deployment) -> None:
    vid = secrets.token_hex(16)
    url = f"{SITE_ORIGIN}/pixel-{vid[:8]}"
    cookie = {"Cookie": f"_ashiato_vid={vid}.s", "User-Agent": CHROME_UA}
    got = httpx.get(f"{dep.url}/p.gif", params={"site": dep.site_key, "url": url}, headers=cookie)
    assert got.status_code == 200
    assert [e.url for e in events_of(dep, vid)] == [url]


def test_head_on_the_pixel_records_nothing(dep: Deployment) -> None:
    vid = secrets.token_hex(16)
    params = {"site": dep.site_key, "vid": vid, "url": f"{SITE_ORIGIN}/head"}
    head = httpx.head(f"{dep.url}/p.gif", params=params, headers={"User-Agent": CHROME_UA})
    assert (head.status_code, head.headers["content-type"]) == (200, "image/gif")
    get = httpx.get(f"{dep.url}/p.gif", params=params, headers={"User-Agent": CHROME_UA})
    assert get.status_code == 200
    assert len(events_of(dep, vid)) == 1  # the GET's, not the HEAD's


# -- protocol surprises -------------------------------------------------------------------


def test_allow_on_collect_names_post(dep: Deployment) -> None:
    answer = httpx.get(f"{dep.url}/collect")
    assert answer.status_code == 405
    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
    assert {"POST", "OPTIONS"} <= allowed


def test_gzip_refused_with_q_0_and_each_encoding_has_its_own_etag(dep: Deployment) -> None:
    url = f"{dep.url}/t.js"
    for refused in ("gzip;q=0", "gzip; q=0.0, identity", "*;q=0, br"):
        plain = httpx.get(url, headers={"Accept-Encoding": refused})
        assert "content-encoding" not in plain.headers, refused
    zipped = httpx.get(url, headers={"Accept-Encoding": "gzip;q=0.5"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] != plain.headers["etag"]
    for etag, encoding in ((plain.headers["etag"], "identity"), (zipped.headers["etag"], "gzip")):
        again = httpx.get(url, headers={"Accept-Encoding": encoding, "If-None-Match": etag})
        assert (again.status_code, again.headers["etag"]) == (304, etag)
    # A cached plain copy does not validate the gzip representation, nor the reverse.
    stale = {"Accept-Encoding": "gzip", "If-None-Match": plain.headers["etag"]}
    assert httpx.get(url, headers=stale).status_code == 200


def test_metrics_count_the_collectors_and_the_apis_answers_apart(dep: Deployment) -> None:
    unauthorized = metric(dep.url, 'ashiato_http_responses_total{code="401"}')
    bad = metric(dep.url, 'ashiato_http_responses_total{code="400"}')
    api_401 = metric(dep.url, 'ashiato_api_responses_total{code="401"}')
    api_200 = metric(dep.url, 'ashiato_api_responses_total{code="200"}')
    made = cli_json(dep.env, "apikey", "create", "metrics", "--scope", "read")
    for _ in range(3):
        assert httpx.get(f"{dep.url}/api/v1/leads").status_code == 401
    reader = {"Authorization": f"Bearer {made['key']}"}
    for _ in range(2):
        assert httpx.get(f"{dep.url}/api/v1/leads", headers=reader).status_code == 200
    assert dep.post(b"not json").status_code == 400
    assert metric(dep.url, 'ashiato_http_responses_total{code="401"}') == unauthorized
    assert metric(dep.url, 'ashiato_http_responses_total{code="400"}') == bad + 1
    assert metric(dep.url, 'ashiato_api_responses_total{code="401"}') == api_401 + 3
    assert metric(dep.url, 'ashiato_api_responses_total{code="200"}') == api_200 + 2
