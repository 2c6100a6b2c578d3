"""Webhooks: signed deliveries to a real receiver, retried through its downtime."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import LOOPBACK_HOOKS, Deployment, make_deployment
from tests.servers import cli_json, free_port, with_store
from tests.waiting import wait_until
from tracker.storage.records import OutboxItem
from tracker.webhooks import signature

# Every test here runs once per backend, as the module builds deployments (the few that
# need no database included).
pytestmark = pytest.mark.usefixtures("backend")


class Receiver:
    """A small real HTTP server that checks signatures and records deliveries."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.secret = b""
        self.deliveries: list[dict] = []  # type: ignore[type-arg]
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = int(self.headers["Ashiato-Signature"].split(",")[0][2:])
                expected = signature(receiver.secret, body, timestamp=timestamp)
                if not hmac.compare_digest(expected, self.headers["Ashiato-Signature"]):
                    receiver.bad_signatures += 1
                receiver.deliveries.append(
                    {
                        "id": self.headers["Ashiato-Delivery"],
                        "type": self.headers["Ashiato-Event"],
                        "body": json.loads(body),
                    }
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver(free_port())
    rx.start()
    yield rx
    rx.stop()


def identify(dep: Deployment, email: str) -> None:
    beacon = dep.beacon(type="identify", traits={"email": email, "name": "Hook Test"})
    assert dep.post(beacon).status_code == 204


def undelivered(dep: Deployment) -> list[OutboxItem]:
    return with_store(dep.database_url, lambda s: s.due_outbox(2**62, limit=100))


def retried_while_down(dep: Deployment, count: int) -> bool:
    """``count`` deliveries wait, and the first in the endpoint's lane has been tried,
    has failed, was retried and failed again."""
    waiting = undelivered(dep)
    return len(waiting) == count and max(item.attempts for item in waiting) >= 2


def test_signed_deliveries_survive_receiver_downtime_exactly_once(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    dep = make_deployment(
        tmp_path, backend=backend, ASHIATO_WEBHOOK_RETRY_SECONDS="0.2", **LOOPBACK_HOOKS
    )
    key = cli_json(dep.env, "apikey", "create", "hooks", "--scope", "admin")["key"]
    dep.server.start()
    created = httpx.post(
        f"{dep.url}/api/v1/webhooks",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "url": f"http://127.0.0.1:{receiver.port}/hook",
            "events": ["lead.created", "lead.identified"],
        },
    )
    assert created.status_code == 201, created.text
    receiver.secret = bytes.fromhex(created.json()["secret"])

    email = f"hook-{secrets.token_hex(4)}@example.jp"
    identify(dep, email)
    wait_until(lambda: len(receiver.deliveries) == 2, what="the first deliveries", timeout=15)
    assert sorted(d["type"] for d in receiver.deliveries) == ["lead.created", "lead.identified"]
    identified = next(d for d in receiver.deliveries if d["type"] == "lead.identified")
    assert identified["body"]["data"]["lead_data"]["email"] == email
    assert identified["body"]["id"] == identified["id"]

    receiver.stop()  # down for a while: deliveries fail and are retried with backoff
    for n in range(3):
        identify(dep, f"hook-{secrets.token_hex(4)}-{n}@example.jp")
    wait_until(lambda: retried_while_down(dep, 3 * 2), what="failed retries", timeout=15)
    assert len(receiver.deliveries) == 2
    receiver.start()
    wait_until(lambda: len(receiver.deliveries) == 2 + 3 * 2, what="the retries", timeout=15)
    # All marked delivered: nothing more may come (a duplicate would show below).
    wait_until(lambda: not undelivered(dep), what="every delivery recorded", timeout=15)
    ids = [d["id"] for d in receiver.deliveries]
    assert len(ids) == len(set(ids)) == 8
    assert receiver.bad_signatures == 0
    dep.server.stop()


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    secret, body = b"k" * 32, b'{"a":1}'
    expected = hmac.new(secret, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(secret, body, timestamp=1_700_000_000) == f"t=1700000000,v1={expected}"
