"""Database trouble over the API: a clear 503 with Retry-After (as the collector
answers), never a 500 with a traceback; and ids PostgreSQL cannot hold (NUL) are
refused at the door, alike on both backends."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests import postgres
from tests.conftest import SITE_ORIGIN, Deployment, make_deployment, write_locked
from tests.servers import CHROME_UA, Server, base_env, cli_json

UNAVAILABLE = {"error": "database unavailable"}


def keys(dep: Deployment) -> dict[str, str]:
    scopes = ("--scope", "admin", "--scope", "privacy", "--scope", "read")
    made = cli_json(dep.env, "apikey", "create", "ops", *scopes)
    return {"Authorization": f"Bearer {made['key']}"}


def test_a_locked_database_answers_api_calls_with_503(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend=backend)
    headers = keys(dep)
    dep.server.start()
    url = f"{dep.url}/api/v1/webhooks"
    with write_locked(dep, "webhooks"):  # the write waits out the 5 s lock timeout, then gives up
        locked = httpx.post(url, headers=headers, json={"url": "https://h.example/"}, timeout=30)
    assert locked.status_code == 503, locked.text
    assert locked.headers["retry-after"] == "2"
    assert locked.json() == UNAVAILABLE
    assert httpx.post(url, headers=headers, json={"url": "https://h.example/"}).status_code == 201
    dep.server.stop()
    logs = dep.server.logs()
    assert "storage unavailable" in logs
    assert "Traceback" not in logs
    assert "unhandled error" not in logs


class Relay:
    """A TCP relay on 127.0.0.1 to the test PostgreSQL: cutting it makes the database
    unreachable for the server (and only for it) without stopping PostgreSQL."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, 0
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def up(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        assert self._listener is not None
        hang_up(self._listener)  # wakes the thread blocked in accept()
        for conn in self._conns:
            hang_up(conn)
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            hang_up(end)


def hang_up(conn: socket.socket) -> None:
    """shutdown, not only close: a close leaves another thread's recv (and the peer)
    waiting."""
    with contextlib.suppress(OSError):  # already gone
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def test_an_unreachable_postgresql_answers_api_calls_with_503(backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: a SQLite file cannot become unreachable")
    direct = urlsplit(postgres.create_database("ashiato_t"))
    relay = Relay((direct.hostname or "127.0.0.1", direct.port or 5432))
    relay.up()
    database_url = urlunsplit(direct._replace(netloc=f"{direct.username}@127.0.0.1:{relay.port}"))
    env = base_env(database_url, keys_dir=tmp_path / "keys")
    site = cli_json(env, "site", "add", "shop", "--origin", SITE_ORIGIN, "--consent", "notice")
    made = cli_json(env, "apikey", "create", "ops", "--scope", "admin")
    headers = {"Authorization": f"Bearer {made['key']}"}
    server = Server(env, tmp_path / "server.log").start()
    url = f"{server.url}/api/v1/webhooks"
    assert httpx.get(url, headers=headers).status_code == 200
    relay.down()
    try:
        down = httpx.get(url, headers=headers, timeout=30)
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "2"
        assert down.json() == UNAVAILABLE
        beacon = {"site": site["site_key"], "type": "pageview", "vid": "c" * 32,
                  "url": f"{SITE_ORIGIN}/", "ts": 1_700_000_000_000}  # fmt: skip
        browser = {"Origin": SITE_ORIGIN, "User-Agent": CHROME_UA}
        collected = httpx.post(f"{server.url}/collect", json=beacon, headers=browser, timeout=30)
        assert collected.status_code == 503, collected.text
        assert collected.headers["retry-after"]
    finally:
        relay.up()  # the same port again: the server finds its database by itself
    assert httpx.get(url, headers=headers, timeout=30).status_code == 200
    server.stop()
    logs = server.logs()
    assert "storage unavailable" in logs
    assert "Traceback" not in logs
    assert "unhandled error" not in logs


NUL_PATHS: list[tuple[str, str, object, int]] = [
    ("GET", "/api/v1/privacy/requests/pr_%00x", None, 404),
    ("DELETE", "/api/v1/webhooks/wh_%00", None, 404),
    ("POST", "/api/v1/leads/ld_%00/unmerge", {"other": "ld_" + "0" * 24, "reason": "r"}, 404),
    ("POST", "/api/v1/privacy/export", {"lead": "ld_\u0000"}, 400),
    ("POST", "/api/v1/privacy/erase", {"visitor": "\u0000" * 32}, 400),
    ("POST", "/api/v1/webhooks", {"url": "https://h.example/", "events": ["\u0000"]}, 400),
    ("GET", "/api/v1/leads/lookup?email=a%00@example.jp", None, 400),
]


@pytest.fixture(scope="module")
def ops(deployment: Deployment) -> dict[str, str]:
    return keys(deployment)


@pytest.mark.parametrize("case", NUL_PATHS)
def test_nul_in_ids_and_text_is_refused_alike_on_both_backends(
    deployment: Deployment, ops: dict[str, str], case: tuple[str, str, object, int]
) -> None:
    method, path, body, status = case
    response = httpx.request(method, f"{deployment.url}{path}", json=body, headers=ops)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert "unhandled error" not in deployment.server.logs()
