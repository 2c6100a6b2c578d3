"""The demo ``make run`` opens: ``ashiato demo`` (the site for the server's port, a
console admin made once), the demo pages' scripts, their explanations of dropped events
(in English and Japanese), and the form's answer waiting for the identification.

SQLite only: nothing here depends on the backend (the demo's storage calls are the
collector's own, tested on both elsewhere)."""

from __future__ import annotations

import html
import re
import secrets
import select
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import deployment_env
from tests.servers import CHROME_UA, Server, cli_json, run_cli

HEADLESS_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36"
)
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.S)


@dataclass
class Demo:
    server: Server
    env: dict[str, str]
    made: dict[str, Any]
    """What the first ``ashiato demo --json`` printed."""

    @property
    def url(self) -> str:
        return self.server.url

    def get(self, path: str, ua: str = CHROME_UA, **headers: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"User-Agent": ua} | headers)

    def send(self, vid: str, ua: str = CHROME_UA, **fields: Any) -> None:
        beacon = {"site": self.made["site_key"], "type": "pageview", "vid": vid,
                  "url": f"{self.url}/demo/"} | fields  # fmt: skip
        headers = {"Origin": self.url, "User-Agent": ua, "Content-Type": "text/plain"}
        answer = httpx.post(f"{self.url}/collect", json=beacon, headers=headers)
        assert answer.status_code == 204, answer.text


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("demo")
    env = deployment_env(tmp, "sqlite", ASHIATO_DEMO="true")
    server = Server(env, tmp / "server.log")
    made = cli_json(env | {"ASHIATO_PORT": str(server.port)}, "demo")
    server.start()
    yield Demo(server, env, made)
    server.stop()
    assert "Traceback" not in server.logs()


def test_ashiato_demo_makes_the_site_for_the_port_and_the_admin_once(demo: Demo) -> None:
    port = demo.server.port
    assert demo.made["origins"] == [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    assert demo.made["demo_page"] == f"{demo.url}/demo/"
    assert demo.made["console"] == f"{demo.url}/admin/"
    assert demo.made["admin"]["created"] is True
    assert len(demo.made["admin"]["password"]) >= 12
    # Again, on another port (make run PORT=…): the same site, its origins added, the
    # same admin (no second one, no new password printed, the way to get one said).
    again = cli_json(demo.env | {"ASHIATO_PORT": "8123"}, "demo")
    assert again["site_key"] == demo.made["site_key"]
    assert again["added_origins"] == ["http://127.0.0.1:8123", "http://localhost:8123"]
    assert set(again["origins"]) == {*demo.made["origins"], *again["added_origins"]}
    assert again["admin"] == {"email": "admin@example.com", "created": False}
    text = run_cli(demo.env | {"ASHIATO_PORT": "8123"}, "demo").stdout
    assert "user reset admin@example.com" in text
    assert "demo site origins added" not in text  # nothing new the third time
    assert [u["email"] for u in cli_json(demo.env, "user", "list")["users"]] == [
        "admin@example.com"
    ]
    wrong = run_cli(demo.env | {"ASHIATO_PORT": "80000"}, "demo", check=False)
    assert (wrong.returncode, wrong.stderr.strip()) == (
        1, "ashiato: error: ASHIATO_PORT (make run PORT=…) must be 1-65535"
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_every_script_on_the_demo_pages_and_the_printed_snippet_is_valid_javascript(
    demo: Demo, tmp_path: Path
) -> None:
    vid = secrets.token_hex(16)
    page = demo.get("/demo/").text
    pre = re.search(r"<pre><code>(.*?)</code></pre>", page, re.S)
    assert pre is not None
    shown = html.unescape(pre[1])  # the snippet shown to copy
    me = demo.get("/demo/me", Cookie=f"_ashiato_vid={vid}").text
    sources = [s for text in (page, me, shown, demo.made["snippet"])
               for s in SCRIPT.findall(text) if s.strip()]  # fmt: skip
    assert len(sources) == 4  # the inline stub of each page, of the shown and printed snippet
    for number, source in enumerate(sources):
        path = tmp_path / f"script{number}.js"
        path.write_text(source)
        checked = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True,
                                 check=False)  # fmt: skip
        assert checked.returncode == 0, f"{source}\n{checked.stderr}"
    assert f'src="{demo.url}/t.js"' in shown  # the page's own address, whatever the port


def test_an_ordinary_browser_on_the_demo_origin_is_told_nothing_is_dropped(demo: Demo) -> None:
    root = demo.get("/")  # the printed address, as typed
    assert (root.status_code, root.headers["location"]) == (302, "/demo/")
    page = demo.get("/demo/")
    assert page.status_code == 200
    assert 'class="dropped"' not in page.text
    assert 'data-site="{}"'.format(demo.made["site_key"]) in page.text


def test_a_headless_browser_is_told_its_events_are_dropped_as_a_bot_in_either_language(
    demo: Demo,
) -> None:
    english = demo.get("/demo/", HEADLESS_UA).text
    assert "reason <code>bot</code>" in english
    assert "HeadlessChrome/131.0.0.0" in english
    japanese = demo.get("/demo/", HEADLESS_UA, **{"Accept-Language": "ja,en;q=0.8"}).text
    assert '<html lang="ja">' in japanese
    assert "ボットまたはヘッドレスブラウザ" in japanese
    assert "ボット" in demo.get("/demo/?lang=ja", HEADLESS_UA).text
    # And it is true: the collector drops such a browser's beacon, and says it counted it.
    vid = secrets.token_hex(16)
    demo.send(vid, HEADLESS_UA)
    me = demo.get("/demo/me", HEADLESS_UA, Cookie=f"_ashiato_vid={vid}").text
    assert "<h2>0 events</h2>" in me
    assert "reason <code>bot</code>" in me
    assert re.search(r"<code>bot</code> [1-9]", me)  # this server's counts


def test_a_page_reached_at_another_address_is_told_its_origin_is_not_the_sites(
    demo: Demo,
) -> None:
    page = demo.get("/demo/", Host="192.0.2.7:8000").text
    assert "reason <code>foreign_origin</code>" in page
    assert "ashiato demo --origin http://192.0.2.7:8000" in page
    assert f"http://127.0.0.1:{demo.server.port}" in page  # the origins it does accept
    japanese = demo.get("/demo/?lang=ja", Host="192.0.2.7:8000").text
    assert "デモサイトのオリジン" in japanese


def test_a_refusal_and_global_privacy_control_are_explained(demo: Demo) -> None:
    refused = secrets.token_hex(16)
    demo.send(refused, type="consent", consent={"analytics": False, "marketing": False})
    me = demo.get("/demo/me", Cookie=f"_ashiato_vid={refused}").text
    assert "reason <code>no_consent</code>" in me
    gpc = demo.get("/demo/", **{"Sec-GPC": "1"}).text
    assert "Global Privacy Control" in gpc


def test_the_forms_answer_waits_for_the_identification_sent_beside_it(demo: Demo) -> None:
    """The tag sends the identification as the form posts; the answer to the post must
    show the lead even when the post arrives first (as it did here: the identification
    is sent only after the post was seen to be unanswered)."""
    vid, email = secrets.token_hex(16), f"form.{secrets.token_hex(4)}@example.jp"
    demo.send(vid)
    body = urlencode({"email": email, "name": "Hanako", "password": "secret"}).encode()
    request = (
        f"POST /demo/me HTTP/1.1\r\nHost: 127.0.0.1:{demo.server.port}\r\n"
        f"User-Agent: {CHROME_UA}\r\nCookie: _ashiato_vid={vid}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", demo.server.port), timeout=30) as conn:
        conn.sendall(request)
        answered_early, _, _ = select.select([conn], [], [], 0.5)
        assert not answered_early, "the form was answered before its identification arrived"
        demo.send(vid, type="identify", traits={"email": email, "name": "Hanako"})
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    text = answer.decode()
    assert text.startswith("HTTP/1.1 200")
    assert f"{email}, Hanako" in text
    assert "has not arrived" not in text
