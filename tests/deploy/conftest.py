"""A TLS deployment on loopback: a real ``ashiato serve`` trusting its proxy, the site's
own pages, Caddy and nginx built from ``deploy/`` in front of both, and Chromium that
resolves ``*.example.test`` to 127.0.0.1."""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.deploy import proxies
from tests.deploy.proxies import SITE_HOST, TRACKER_HOST, Proxy
from tests.servers import Server, base_env, cli_json, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--host-resolver-rules=MAP *.example.test 127.0.0.1",
]  # fmt: skip
PROXIES = ("caddy", "nginx")


class SitePages(BaseHTTPRequestHandler):
    """The site's own application behind the proxy: serves ``pages`` by path."""

    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        page = self.pages.get(self.path.split("?")[0])
        data = (page or "not found").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Stack:
    """The collector, its notice site (cookie domain ``example.test``) and the pages.
    Each proxy gets its own HTTPS port, chosen before the site is created, so that the
    site's origins can name them."""

    server: Server
    env: dict[str, str]
    database_url: str
    site_key: str
    tmp: Path
    ports: dict[str, int]
    pages: dict[str, str] = field(default_factory=dict)

    def origin(self, proxy: str) -> str:
        return f"https://{SITE_HOST}:{self.ports[proxy]}"

    def page_url(self, proxy: str, layout: str) -> str:
        return f"{self.origin(proxy)}/{layout}-{self.ports[proxy]}/"


def page(snippet: str, tag_url: str, title: str) -> str:
    """A page with the snippet ``site add`` printed, its tag URL set for the layout."""
    tag = re.sub(r'src="[^"]*"', f'src="{tag_url}"', snippet)
    assert tag != snippet
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><h1>{title}</h1>\n{tag}\n</body></html>"
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("deploy")
    ports = {name: free_port() for name in PROXIES}
    database_url = f"sqlite:///{tmp / 'ashiato.db'}"
    env = base_env(database_url, ASHIATO_TRUSTED_PROXIES="127.0.0.1")
    origins = [arg for p in ports.values() for arg in ("--origin", f"https://{SITE_HOST}:{p}")]
    site = cli_json(
        env, "site", "add", "corporate", *origins,
        "--consent", "notice", "--cookie-domain", "example.test",
    )  # fmt: skip
    server = Server(env, tmp / "server.log").start()
    built = Stack(server, env, database_url, site["site_key"], tmp, ports)
    for port in ports.values():
        tag_urls = {"subdomain": f"https://{TRACKER_HOST}:{port}/t.js", "path": "/ashiato/t.js"}
        for layout, tag_url in tag_urls.items():
            built.pages[f"/{layout}-{port}/"] = page(site["snippet"], tag_url, layout)
    handler = type("Handler", (SitePages,), {"pages": built.pages})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler))
    built.ports["site_app"] = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield built
    httpd.shutdown()
    httpd.server_close()
    server.stop()
    assert "Traceback" not in server.logs(), server.logs()


def _run(stack: Stack, name: str) -> Iterator[Proxy]:
    workdir = stack.tmp / name
    workdir.mkdir(exist_ok=True)
    build = proxies.caddy if name == "caddy" else proxies.nginx
    proxy = build(
        workdir,
        port=stack.ports[name],
        collector=stack.server.port,
        site_app=stack.ports["site_app"],
    )
    try:
        yield proxy.start()
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def caddy(stack: Stack) -> Iterator[Proxy]:
    yield from _run(stack, "caddy")


@pytest.fixture(scope="module")
def nginx(stack: Stack) -> Iterator[Proxy]:
    yield from _run(stack, "nginx")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, resolving every ``*.example.test`` host to 127.0.0.1."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        yield launched
        launched.close()
