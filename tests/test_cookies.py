"""The collector's own visitor cookie: HttpOnly, Secure, first-party only, set once.

The server is reached as a TLS proxy would reach it: from a trusted address with
``X-Forwarded-Proto: https`` and the browser's ``Host``. (The real TLS deployment with
Caddy and Chromium is tested in ``tests/deploy``.)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import Deployment, make_deployment
from tests.servers import CHROME_UA, cli_json, with_store
from tracker.cookies import LIFETIME_SECONDS, read_vid

WWW = "https://www.example.test"


@pytest.fixture(scope="module")
def sites(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, str, str]]:
    dep = make_deployment(
        tmp_path_factory.mktemp("cookies"), backend=backend, ASHIATO_TRUSTED_PROXIES="127.0.0.1"
    )
    notice = cli_json(
        dep.env,
        "site",
        "add",
        "notice",
        "--origin",
        WWW,
        "--consent",
        "notice",
        "--cookie-domain",
        "example.test",
    )["site_key"]
    optin = cli_json(dep.env, "site", "add", "optin", "--origin", WWW, "--consent", "opt-in")[
        "site_key"
    ]
    dep.server.start()
    yield dep, notice, optin
    dep.server.stop()


def send(
    dep: Deployment,
    site: str,
    body: dict,
    *,
    host: str,
    https: bool = True,  # type: ignore[type-arg]
    cookie: str | None = None,
) -> httpx.Response:
    headers = {"Origin": WWW, "User-Agent": CHROME_UA, "Content-Type": "text/plain", "Host": host}
    if https:
        headers["X-Forwarded-Proto"] = "https"
    if cookie:
        headers["Cookie"] = f"_ashiato_vid={cookie}"
    beacon = {"site": site, "vid": secrets.token_hex(16), "url": f"{WWW}/"} | body
    return httpx.post(f"{dep.url}/collect", content=orjson.dumps(beacon), headers=headers)


def test_sibling_host_sets_a_domain_cookie_once_and_then_it_is_the_visitor(
    sites: tuple[Deployment, str, str],
) -> None:
    dep, notice, _ = sites
    first = send(dep, notice, {"type": "pageview"}, host="t.example.test")
    assert first.status_code == 204
    cookie = first.headers["set-cookie"]
    for attribute in (
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Domain=example.test",
        f"Max-Age={LIFETIME_SECONDS}",
        "Path=/",
    ):
        assert attribute in cookie
    found = read_vid(cookie.split(";")[0])
    assert found is not None
    vid, own = found
    assert own  # marked as the collector's own
    # The tag's memory says another id (Safari dropped its own cookie): the cookie wins.
    again = send(
        dep,
        notice,
        {"type": "pageview", "url": f"{WWW}/two"},
        host="t.example.test",
        cookie=f"{vid}.s",
    )
    assert "set-cookie" not in again.headers  # never renewed
    urls = [e.url for e in with_store(dep.database_url, lambda s: s.visitor_events(vid))]
    assert urls == [f"{WWW}/", f"{WWW}/two"]


def test_same_host_path_layout_sets_a_host_only_cookie(sites: tuple[Deployment, str, str]) -> None:
    dep, notice, _ = sites
    cookie = send(dep, notice, {"type": "pageview"}, host="www.example.test").headers["set-cookie"]
    assert "Domain=" not in cookie
    assert "HttpOnly" in cookie


def test_path_layout_replaces_the_tags_cookie_keeping_its_id(
    sites: tuple[Deployment, str, str],
) -> None:
    """On the site's own host the tag's script cookie (a bare id) reaches the collector
    under the same name: it is adopted and replaced by the collector's HttpOnly one."""
    dep, notice, _ = sites
    host, vid = "www.example.test", secrets.token_hex(16)
    first = send(dep, notice, {"type": "pageview"}, host=host, cookie=vid)
    assert first.headers["set-cookie"].startswith(f"_ashiato_vid={vid}.s;")
    assert "HttpOnly" in first.headers["set-cookie"]
    # Both cookies may travel for a moment; the collector's own is believed, not renewed.
    both = f"{secrets.token_hex(16)}; _ashiato_vid={vid}.s"
    again = send(dep, notice, {"type": "pageview", "url": f"{WWW}/two"}, host=host, cookie=both)
    assert "set-cookie" not in again.headers
    urls = [e.url for e in with_store(dep.database_url, lambda s: s.visitor_events(vid))]
    assert urls == [f"{WWW}/", f"{WWW}/two"]


@pytest.mark.parametrize(("host", "https"), [("t.example.test", False), ("evil.example", True)])
def test_no_cookie_over_http_or_from_a_foreign_host(
    sites: tuple[Deployment, str, str], host: str, https: bool
) -> None:
    dep, notice, _ = sites
    sent = send(dep, notice, {"type": "pageview"}, host=host, https=https, cookie="a" * 32)
    assert sent.status_code == 204
    assert "set-cookie" not in sent.headers
    # ...and a cookie it did not set itself is not believed either.
    assert with_store(dep.database_url, lambda s: s.visitor_events("a" * 32)) == []


def test_opt_in_cookie_only_after_consent_and_cleared_on_withdrawal(
    sites: tuple[Deployment, str, str],
) -> None:
    dep, _, optin = sites
    host = "www.example.test"
    before = send(dep, optin, {"type": "pageview"}, host=host)
    assert "set-cookie" not in before.headers  # opt-in: no cookie before consent
    vid = secrets.token_hex(16)
    grant = send(
        dep,
        optin,
        {"vid": vid, "type": "consent", "consent": {"analytics": True, "marketing": False}},
        host=host,
    )
    assert grant.headers["set-cookie"].startswith(f"_ashiato_vid={vid}.s;")
    own = f"{vid}.s"
    withdraw = send(
        dep, optin, {"type": "consent", "consent": {"analytics": False}}, host=host, cookie=own
    )
    assert "Max-Age=0" in withdraw.headers["set-cookie"]
    forget = send(dep, optin, {"type": "forget"}, host=host, cookie=own)
    assert "Max-Age=0" in forget.headers["set-cookie"]


def test_cookie_domain_must_cover_the_origins(backend: str, tmp_path: Path) -> None:
    from tests.servers import run_cli

    dep = make_deployment(tmp_path, backend=backend)
    bad = run_cli(
        dep.env, "site", "add", "x", "--origin", WWW, "--cookie-domain", "other.test", check=False
    )
    assert bad.returncode == 2
    assert "cookie domain" in bad.stderr
    tld = run_cli(
        dep.env, "site", "add", "y", "--origin", WWW, "--cookie-domain", "test", check=False
    )
    assert tld.returncode == 2
