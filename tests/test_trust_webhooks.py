"""Webhooks you can trust: no requests to this host or private networks (SSRF), and
no receiver can hold back another's deliveries.

Network rule: every connection these tests make goes to 127.0.0.1. Refusals are shown
at registration (URL checks, no connection) and at delivery with an injected resolver
that answers a loopback address for a made-up name, watching that nothing connects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LOOPBACK_HOOKS, Deployment, make_deployment
from tests.servers import cli_json, free_port
from tests.waiting import wait_until
from tracker.settings import Settings
from tracker.webhook_targets import IPAddress, RefusedTarget, TargetPolicy, pin
from tracker.webhooks import PER_ENDPOINT, Deliverer
from tracker.wiring import open_parts

# Every test here runs once per backend, as the module builds deployments (the few that
# need no database included).
pytestmark = pytest.mark.usefixtures("backend")

LOOPBACK = ipaddress.ip_address("127.0.0.1")


class Receiver(ThreadingHTTPServer):
    """A real HTTP receiver on 127.0.0.1 that counts connections and keeps Host headers."""

    def __init__(self) -> None:
        self.connections, self.hosts, self.ids = 0, [], []  # type: ignore[var-annotated]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hosts.append(self.headers["Host"])
                receiver.ids.append(self.headers["Ashiato-Delivery"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.stop()


def admin_key(dep: Deployment) -> dict[str, str]:
    key = cli_json(dep.env, "apikey", "create", "hooks", "--scope", "admin")["key"]
    return {"Authorization": f"Bearer {key}"}


def register(dep: Deployment, headers: dict[str, str], url: str) -> httpx.Response:
    return httpx.post(f"{dep.url}/api/v1/webhooks", headers=headers, json={"url": url})


def identify(dep: Deployment, n: int) -> None:
    traits = {"email": f"trust-{n}-{secrets.token_hex(3)}@example.jp"}
    assert dep.post(dep.beacon(type="identify", traits=traits)).status_code == 204


# -- registration ------------------------------------------------------------------------

REFUSED = [
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://api.localhost/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one number
    "https://127.1/hook",
    "https://0x7f.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.8/hook",
    "https://172.16.3.4/hook",
    "https://192.168.1.10/hook",
    "https://100.64.0.1/hook",  # shared address space (carrier NAT)
    "https://[fd12::1]/hook",
    "https://user:secret@hooks.example.com/hook",  # credentials
    "http://hooks.example.com/hook",  # plain http
]


def test_registration_refuses_private_destinations_credentials_and_http(
    deployment: Deployment,
) -> None:
    headers = admin_key(deployment)
    for url in REFUSED:
        response = register(deployment, headers, url)
        assert response.status_code == 400, (url, response.text)
        assert set(response.json()) == {"error"}
    # A name is not resolved at registration (it is at every delivery): accepted.
    assert register(deployment, headers, "https://hooks.example.com/hook").status_code == 201
    listed = httpx.get(f"{deployment.url}/api/v1/webhooks", headers=headers).json()["webhooks"]
    assert [h["url"] for h in listed] == ["https://hooks.example.com/hook"]


@pytest.mark.parametrize(
    "answer", [["127.0.0.1"], ["::1"], ["10.1.2.3"], ["169.254.169.254"], ["8.8.8.8", "10.0.0.1"]]
)
def test_a_name_resolving_to_any_private_address_is_refused(answer: list[str]) -> None:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in answer]

    with pytest.raises(RefusedTarget, match="private network"):
        asyncio.run(pin("https://hooks.example.com/x", TargetPolicy(), resolve))


# -- delivery ----------------------------------------------------------------------------


class Resolutions:
    """An injected resolver: every name is 127.0.0.1 (no DNS is asked); calls are kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append((host, port))
        return [LOOPBACK]


async def deliver_once(
    dep: Deployment, policy: TargetPolicy, resolve: Resolutions, *, later: float = 0.0
) -> list[Any]:
    """One delivery round in this process, on the deployment's own database."""
    parts = await open_parts(Settings.from_env(dep.env))
    deliverer = Deliverer(parts.store, parts.vault, parts.personal, policy=policy,
                          resolve=resolve, now=lambda: time.time() + later)  # fmt: skip
    try:
        await deliverer.deliver_due()
        await deliverer.idle()
    finally:
        await deliverer.close()
        await parts.close()
    return await outbox(dep)


async def outbox(dep: Deployment) -> list[Any]:
    """The undelivered outbox rows, by id."""
    parts = await open_parts(Settings.from_env(dep.env))
    try:
        return sorted(await parts.store.due_outbox(2**62, limit=100), key=lambda i: i.id)
    finally:
        await parts.close()


def test_delivery_resolves_checks_and_connects_to_the_checked_address(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    dep = make_deployment(tmp_path, backend=backend, **LOOPBACK_HOOKS)  # to register an http URL
    hook = f"http://rebind.example:{receiver.port}/in"
    dep.server.start()
    assert register(dep, admin_key(dep), hook).status_code == 201
    dep.server.stop()
    # Back to the defaults: the server's own deliverer refuses the http URL before any
    # lookup (so no DNS query leaves this machine); the outbox rows stay for below.
    dep.env.update(ASHIATO_WEBHOOK_ALLOW_PRIVATE="false", ASHIATO_WEBHOOK_ALLOW_HTTP="false")
    dep.server.start()
    identify(dep, 1)  # lead.created + lead.identified
    wait_until(lambda: "url must use https" in dep.server.logs(), what="the refusal logged")
    dep.server.stop()
    assert "url must use https" in dep.server.logs()
    before = asyncio.run(outbox(dep))
    assert len(before) == 2

    # The name resolves to 127.0.0.1: refused after resolving, nothing is sent.
    strict = Resolutions()
    failed = asyncio.run(deliver_once(dep, TargetPolicy(allow_http=True), strict, later=30))
    assert set(strict.calls) == {("rebind.example", receiver.port)}
    assert receiver.connections == 0
    assert [i.attempts for i in failed] == [i.attempts + 1 for i in before]
    assert all(i.delivered_at is None for i in failed)
    assert all("resolves to this host or a private network" in (i.last_error or "")
               for i in failed)  # fmt: skip

    # Private allowed: each delivery resolves once and goes to the address it checked
    # (".example" names never resolve in DNS: arriving here proves no second lookup).
    allowed = Resolutions()
    policy = TargetPolicy(allow_private=True, allow_http=True)
    assert asyncio.run(deliver_once(dep, policy, allowed, later=600)) == []
    assert len(allowed.calls) == 2
    assert sorted(receiver.ids) == [i.id for i in failed]
    assert receiver.hosts == [f"rebind.example:{receiver.port}"] * 2


# -- one endpoint never holds another --------------------------------------------------


class Silent:
    """A receiver that accepts connections and never answers; counts how many it holds
    open at once (the deliverer's timeout closes them)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.open = self.most_open = self.accepted = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):  # read the request, answer nothing, until hung up
                pass
        with self._lock:
            self.open -= 1


def test_a_silent_receiver_never_holds_back_a_healthy_one(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    silent = Silent()
    dep = make_deployment(tmp_path, backend=backend, ASHIATO_WEBHOOK_TIMEOUT_SECONDS="1",
                          ASHIATO_WEBHOOK_RETRY_SECONDS="0.2", **LOOPBACK_HOOKS)  # fmt: skip
    dep.server.start()
    headers = admin_key(dep)
    # The silent one first: its deliveries are the oldest in the outbox.
    for port in (silent.port, receiver.port):
        assert register(dep, headers, f"http://127.0.0.1:{port}/hook").status_code == 201
    for n in range(20):  # 2 deliveries per endpoint each: 40 for the healthy receiver
        identify(dep, n)
    deadline = time.monotonic() + 4.0  # alone it takes well under a second
    while len(receiver.ids) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)  # a bounded wait; the assertion below says what failed
    got, most_open = len(receiver.ids), silent.most_open
    dep.server.stop()
    silent.sock.close()
    assert got == 40, f"the healthy receiver got {got}/40 beside a silent one"
    assert len(set(receiver.ids)) == 40
    assert 1 <= most_open <= PER_ENDPOINT  # the silent endpoint's own lane, no more
    assert "Traceback" not in dep.server.logs()
