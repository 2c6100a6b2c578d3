"""Standard Webhooks: the ``standardwebhooks`` library (PyPI) verifies every delivery a
real receiver on 127.0.0.1 gets, retries included; the leads come in through the
unmodified Segment SDK."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from segment.analytics.client import Client as SegmentClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import LOOPBACK_HOOKS, make_deployment
from tests.servers import cli_json, free_port
from tests.waiting import wait_until
from tracker.webhook_signing import standard_signature, whsec


class Receiver:
    """Verifies each delivery with the library; refuses the first attempt of each
    delivery (500), so every one is also retried and verified again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.verifier: Webhook | None = None
        self.verified: list[tuple[str, dict[str, Any]]] = []
        self.rejected: list[str] = []
        self.refused_once: set[str] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.receive(body, dict(self.headers.items()))
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def receive(self, body: bytes, headers: dict[str, str]) -> int:
        assert self.verifier is not None
        try:
            payload = self.verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return 400
        delivery = headers["webhook-id"]
        self.verified.append((delivery, payload))
        if delivery not in self.refused_once:
            self.refused_once.add(delivery)
            return 500
        return 204


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    threading.Thread(target=rx.server.serve_forever, daemon=True).start()
    yield rx
    rx.server.shutdown()
    rx.server.server_close()


def test_standardwebhooks_verifies_every_delivery(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    dep = make_deployment(
        tmp_path, backend=backend, ASHIATO_WEBHOOK_RETRY_SECONDS="0.1", **LOOPBACK_HOOKS
    )
    admin = cli_json(dep.env, "apikey", "create", "hooks", "--scope", "admin")["key"]
    write_key = cli_json(dep.env, "site", "write-key", dep.site_key)["write_key"]
    dep.server.start()
    try:
        created = httpx.post(
            f"{dep.url}/api/v1/webhooks",
            headers={"Authorization": f"Bearer {admin}"},
            json={"url": f"http://127.0.0.1:{receiver.port}/hook",
                  "events": ["lead.created", "lead.identified"]},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        secret = created.json()["signing_secret"]
        assert secret == whsec(bytes.fromhex(created.json()["secret"]))
        receiver.verifier = Webhook(secret)

        client = SegmentClient(write_key, host=dep.url, sync_mode=True, max_retries=0)
        emails = [f"std-{secrets.token_hex(4)}@example.jp" for _ in range(2)]
        for email in emails:
            client.identify(f"user-{email}", {"email": email}, anonymous_id=secrets.token_hex(16))

        # 2 leads x (created, identified for the anonymous and for the user's visitor id)
        # = 6 deliveries, each refused once, then retried.
        wait_until(lambda: len(receiver.verified) == 12, what="12 verified attempts", timeout=30)
    finally:
        dep.server.stop()
    assert receiver.rejected == []
    ids = [delivery for delivery, _ in receiver.verified]
    assert len(set(ids)) == 6
    assert all(ids.count(i) == 2 for i in set(ids))  # a retry keeps its webhook-id
    types = sorted(p["type"] for delivery, p in receiver.verified)
    assert types == ["lead.created"] * 4 + ["lead.identified"] * 8
    identified = [p for _, p in receiver.verified if p["type"] == "lead.identified"]
    assert sorted({p["data"]["lead_data"]["email"] for p in identified}) == sorted(emails)
    assert all(p["id"] in ids for _, p in receiver.verified)


def test_a_tampered_delivery_fails_verification() -> None:
    secret, body, delivery = secrets.token_bytes(32), b'{"type":"lead.created"}', "ob_1"
    now = int(time.time())
    headers = {"webhook-id": delivery, "webhook-timestamp": str(now),
               "webhook-signature": standard_signature(secret, delivery, now, body)}  # fmt: skip
    verifier = Webhook(whsec(secret))
    assert verifier.verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body.replace(b"created", b"erased"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(base64.b64encode(b"another secret").decode()).verify(body, headers)
