"""Browser fixtures: a page server, a collector that trusts its origin, real Chromium."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.conftest import Deployment, deployment_env
from tests.servers import Server, cli_json, free_port

PAGES = Path(__file__).parent / "pages"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


class PageHandler(SimpleHTTPRequestHandler):
    """Serves pages/*.html with {COLLECTOR} and {SITE} (and any ``fill`` placeholder)
    filled in; any other path 200s. A POST (a form) is answered 303 to the same path."""

    collector = ""
    site = ""
    fill: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        name = self.path.split("?")[0].split("#")[0].strip("/").split("/")[0] or "spa"
        page = PAGES / f"{name}.html"
        body = page.read_text() if page.exists() else "<p>ok</p>"
        for placeholder, value in self.fill.items():
            body = body.replace(placeholder, value)
        data = body.replace("{COLLECTOR}", self.collector).replace("{SITE}", self.site).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(303)
        self.send_header("Location", self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site_pages(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, str]]:
    """(deployment, page origin): the collector serves a site whose origin is the page server."""
    tmp = tmp_path_factory.mktemp("browser")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = deployment_env(tmp, backend)
    database_url = env["ASHIATO_DATABASE_URL"]
    site = cli_json(env, "site", "add", "pages", "--origin", origin, "--consent", "notice")
    dep = Deployment(Server(env, tmp / "server.log"), env, database_url, site["site_key"], tmp)
    dep.server.start()
    handler = type("Handler", (PageHandler,), {"collector": dep.url, "site": dep.site_key})
    httpd = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield dep, origin
    httpd.shutdown()
    dep.server.stop()
    assert "Traceback" not in dep.server.logs()


@dataclass
class SitePages:
    """A collector with a notice site (``{SITE}`` in pages) and an opt-in site
    (``{OPTIN_SITE}``) that share the page server's origin, and an API key."""

    dep: Deployment
    origin: str
    optin_key: str
    api_key: str

    @property
    def notice_key(self) -> str:
        return self.dep.site_key

    def api(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.dep.url}/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
        )


@pytest.fixture(scope="module")
def sites_pages(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SitePages]:
    """Like ``site_pages``, with an opt-in site beside the notice one and an API key."""
    tmp = tmp_path_factory.mktemp("browser-sites")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = deployment_env(tmp, backend)
    database_url = env["ASHIATO_DATABASE_URL"]
    notice = cli_json(env, "site", "add", "notice", "--origin", origin, "--consent", "notice")
    optin = cli_json(env, "site", "add", "optin", "--origin", origin, "--consent", "opt-in")
    scopes = ("--scope", "read", "--scope", "admin", "--scope", "identify")
    api_key = cli_json(env, "apikey", "create", "tests", *scopes)["key"]
    dep = Deployment(Server(env, tmp / "server.log"), env, database_url, notice["site_key"], tmp)
    dep.server.start()
    fill = {"{OPTIN_SITE}": optin["site_key"]}
    handler = type("Handler", (PageHandler,), {"collector": dep.url, "site": dep.site_key,
                                               "fill": fill})  # fmt: skip
    httpd = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield SitePages(dep, origin, optin["site_key"], api_key)
    httpd.shutdown()
    dep.server.stop()
    assert "Traceback" not in dep.server.logs()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
