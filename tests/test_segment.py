"""Segment-compatible ingest: the unmodified Segment and RudderStack Python SDKs against a
real ashiato, on both backends."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from tests.conftest import Deployment, make_deployment
from tests.servers import cli_json, with_store
from tests.test_hostile_property import JSONISH, PROPERTY
from tracker.storage.records import Event

PAGE = "https://www.example.co.jp/pricing"
EU_ORIGIN = "https://www.example.eu"


@dataclass
class Senders:
    dep: Deployment
    write_key: str
    """The notice-mode site's (rotated once: the one ``site add`` printed is dead)."""
    eu_write_key: str
    """An opt-in site's (rotated too)."""
    dead_key: str
    """The opt-in site's first key, as ``site add`` printed it: rotated away."""
    read_key: str

    def segment(self, *, write_key: str | None = None, gzip: bool = False) -> SegmentClient:
        return SegmentClient(write_key or self.write_key, host=self.dep.url, sync_mode=True,
                             gzip=gzip, max_retries=0, timeout=10)  # fmt: skip

    def rudder(self, *, write_key: str | None = None) -> RudderClient:
        return RudderClient(write_key or self.write_key, host=self.dep.url, sync_mode=True,
                            max_retries=0, timeout=10)  # fmt: skip

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.dep.url}{path}", params=params,
                             headers={"Authorization": f"Bearer {self.read_key}"})  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, content: bytes, **headers: str) -> httpx.Response:
        auth = httpx.BasicAuth(self.write_key, "")
        headers = {"Content-Type": "application/json"} | headers
        return httpx.post(f"{self.dep.url}{path}", content=content, auth=auth, headers=headers)

    def events(self, vid: str) -> list[Event]:
        return with_store(self.dep.database_url, lambda store: store.visitor_events(vid))


@pytest.fixture(scope="module")
def senders(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Senders]:
    dep = make_deployment(tmp_path_factory.mktemp("segment"), backend=backend)
    eu = cli_json(dep.env, "site", "add", "eu", "--origin", EU_ORIGIN, "--consent", "opt-in")
    rotated = cli_json(dep.env, "site", "write-key", dep.site_key)
    eu_rotated = cli_json(dep.env, "site", "write-key", eu["site_key"])
    assert eu_rotated["write_key"] != eu["write_key"]
    read_key = cli_json(dep.env, "apikey", "create", "reader", "--scope", "read")["key"]
    dep.server.start()
    yield Senders(dep, rotated["write_key"], eu_rotated["write_key"], eu["write_key"], read_key)
    dep.server.stop()
    assert "Traceback" not in dep.server.logs(), dep.server.logs()


@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
def test_identify_page_track_alias_arrive_in_the_leads_timeline(senders: Senders, sdk: str) -> None:
    client = senders.segment() if sdk == "segment" else senders.rudder()
    user, email = f"u-{secrets.token_hex(4)}", f"seg-{secrets.token_hex(4)}@example.jp"
    browser, laptop = str(uuid.uuid4()), str(uuid.uuid4())
    client.page(anonymous_id=browser, name="Pricing", properties={"url": PAGE})
    client.identify(user, {"email": email, "firstName": "Aya", "lastName": "Sato",
                           "company": {"name": "Example KK"}, "plan": "pro"},
                    anonymous_id=browser)  # fmt: skip
    client.track(user, "Signed Up", {"plan": "pro", "items": [{"sku": "a"}]})
    client.alias(laptop, user)

    lead = senders.api("/api/v1/leads/lookup", email=email)
    detail = senders.api(f"/api/v1/leads/{lead['id']}")
    assert detail["name"] == "Aya Sato"
    assert detail["company"] == "Example KK"
    timeline = senders.api(f"/api/v1/leads/{lead['id']}/timeline")["items"]
    events = [(i["type"], i.get("name"), i.get("url")) for i in timeline if i["kind"] == "event"]
    assert ("pageview", None, PAGE) in events
    assert ("identify", None, None) in events
    assert ("event", "Signed Up", None) in events
    assert ("event", "alias", None) in events
    links = {i["visitor"]: i["evidence"] for i in timeline if i["kind"] == "identified"}
    assert links[browser.replace("-", "")] == "api"
    assert laptop.replace("-", "") in links
    signed_up = next(i for i in timeline if i.get("name") == "Signed Up")
    assert signed_up["props"] == {"plan": "pro", "items": '[{"sku":"a"}]'}


def test_a_resent_message_id_is_stored_once(senders: Senders) -> None:
    client, vid = senders.segment(gzip=True), secrets.token_hex(16)
    for _ in range(3):  # a retry after a lost answer carries the same messageId
        client.track(anonymous_id=vid, event="Downloaded", message_id="m-1")
    client.track(anonymous_id=vid, event="Downloaded", message_id="m-2")
    message = {"type": "track", "anonymousId": vid, "event": "Batch", "messageId": "m-3"}
    body = httpx.Request("POST", "/", json={"batch": [message, message]}).content
    assert senders.post("/v1/batch", body).json() == {"success": True}
    names = [e.name for e in senders.events(vid)]
    assert names == ["Downloaded", "Downloaded", "Batch"]


def test_gzip_bombs_and_oversized_bodies_are_refused(senders: Senders) -> None:
    huge = {"type": "track", "anonymousId": "a", "event": "x", "properties": {"b": "x" * 33_000}}
    single = httpx.Request("POST", "/", json=huge).content
    assert senders.post("/v1/track", single).status_code == 413
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]", compresslevel=9)
    assert len(bomb) < 100_000
    refused = senders.post("/v1/batch", bomb, **{"Content-Encoding": "gzip"})
    assert refused.status_code == 413
    assert refused.json()["code"] == "payload_too_large"
    big = {"batch": [{"type": "track", "anonymousId": "a", "event": "x"}] * 2501}
    body = httpx.Request("POST", "/", json=big).content
    assert senders.post("/v1/batch", body).status_code == 413
    broken = senders.post("/v1/batch", b"{nope", **{"Content-Encoding": "identity"})
    assert broken.status_code == 400
    assert set(broken.json()) == {"code", "message"}
    not_gzip = senders.post("/v1/track", b"plain", **{"Content-Encoding": "gzip"})
    assert not_gzip.status_code == 400


def test_write_keys_by_basic_auth_or_body_and_a_rotated_key_is_dead(senders: Senders) -> None:
    vid = secrets.token_hex(16)
    track = {"type": "track", "anonymousId": vid, "event": "Keyed"}
    body = httpx.Request("POST", "/", json=track | {"writeKey": senders.write_key}).content
    url = f"{senders.dep.url}/v1/track"
    assert httpx.post(url, content=body).json() == {"success": True}
    no_colon = httpx.Headers({"Authorization": "Basic " + _b64(senders.write_key)})
    plain = httpx.Request("POST", "/", json=track).content
    assert httpx.post(url, content=plain, headers=no_colon).status_code == 200
    assert len(senders.events(vid)) == 2
    for key in ("", "wrong", senders.eu_write_key + "x", senders.dead_key):
        answer = httpx.post(url, content=plain, auth=httpx.BasicAuth(key, ""))
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_write_key"
    assert httpx.post(url, content=plain).status_code == 401
    assert len(senders.events(vid)) == 2


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_clock_skew_is_corrected_from_sent_at(senders: Senders) -> None:
    vid = secrets.token_hex(16)
    skewed = datetime.now(UTC) + timedelta(hours=5)  # the sender's clock is 5 h ahead
    message = {"type": "track", "anonymousId": vid, "event": "Skewed",
               "timestamp": (skewed - timedelta(seconds=90)).isoformat()}  # fmt: skip
    body = {"batch": [message], "sentAt": skewed.isoformat()}
    before = time.time() * 1000
    response = senders.post("/v1/batch", httpx.Request("POST", "/", json=body).content)
    after = time.time() * 1000
    assert response.status_code == 200
    (event,) = senders.events(vid)
    assert before - 90_000 - 1000 <= event.at <= after - 90_000 + 1000
    unreadable = {"type": "track", "anonymousId": vid, "event": "Odd", "timestamp": "soon"}
    body = {"batch": [unreadable], "sentAt": "2026-13-45T99:00:00Z"}
    response = senders.post("/v1/batch", httpx.Request("POST", "/", json=body).content)
    assert response.status_code == 200
    odd = next(e for e in senders.events(vid) if e.name == "Odd")
    assert odd.at >= after - 1000  # the server's clock stands


def test_an_opt_in_site_keeps_only_what_the_senders_cmp_allowed(senders: Senders) -> None:
    segment, rudder = (
        senders.segment(write_key=senders.eu_write_key),
        senders.rudder(write_key=senders.eu_write_key),
    )
    silent, granted, refused, rudder_ok = (secrets.token_hex(16) for _ in range(4))
    segment.track(anonymous_id=silent, event="No consent stated")
    allow = {"consent": {"categoryPreferences": {"Analytics": True, "Advertising": False}}}
    segment.track(anonymous_id=granted, event="Allowed", context=allow)
    deny = {"consent": {"categoryPreferences": {"Analytics": False}}}
    segment.track(anonymous_id=refused, event="Refused", context=deny)
    onetrust = {"consentManagement": {"provider": "oneTrust",
                                      "allowedConsentIds": ["C0001", "C0002"],
                                      "deniedConsentIds": ["C0004"]}}  # fmt: skip
    rudder.track(anonymous_id=rudder_ok, event="Rudder allowed", context=onetrust)
    rudder.track(anonymous_id=rudder_ok, event="Rudder again", context=onetrust)
    assert senders.events(silent) == []
    assert senders.events(refused) == []
    assert [e.name for e in senders.events(granted)] == ["Allowed"]
    assert [e.name for e in senders.events(rudder_ok)] == ["Rudder allowed", "Rudder again"]
    vids = [rudder_ok, granted]
    receipts = with_store(senders.dep.database_url, lambda store: store.consent_receipts_of(vids))
    assert sorted((r.source, r.analytics, r.marketing) for r in receipts) == [
        ("rudderstack", True, False),  # once, though every message repeats it
        ("segment", True, False),
    ]


def test_rudderstack_gzip_batches_with_every_message_type(senders: Senders) -> None:
    client, vid = senders.rudder(), secrets.token_hex(16)
    client.page(anonymous_id=vid, name="Home", properties={"url": PAGE + "?utm_source=mail"})
    client.screen(anonymous_id=vid, name="Dashboard")
    client.group(anonymous_id=vid, group_id="acme", traits={"name": "ACME"})
    client.track(anonymous_id=vid, event="Clicked", properties={"n": 1})
    stored = senders.events(vid)
    assert [(e.type, e.name) for e in stored] == [
        ("pageview", None), ("event", "screen"), ("event", "group"), ("event", "Clicked"),
    ]  # fmt: skip
    assert stored[0].utm_source == "mail"
    assert stored[0].props == {"name": "Home"}  # the URL is the event's own, not a prop
    assert stored[1].props == {"name": "Dashboard"}
    assert stored[2].props == {"group_id": "acme"}
    assert stored[0].device == "server"


def test_an_oversized_or_malformed_message_is_dropped_not_its_batch(senders: Senders) -> None:
    vid = secrets.token_hex(16)
    fine = {"type": "track", "anonymousId": vid, "event": "Fine"}
    huge = fine | {"event": "Huge", "properties": {"blob": "x" * 33_000}}
    nameless = {"type": "track", "event": "Nobody"}  # neither anonymousId nor userId
    odd = {"type": "teleport", "anonymousId": vid}
    body = {"batch": [huge, fine, nameless, odd, {"type": "track", "anonymousId": 5.5}]}
    response = senders.post("/v1/batch", httpx.Request("POST", "/", json=body).content)
    assert response.json() == {"success": True}
    assert [e.name for e in senders.events(vid)] == ["Fine"]


def test_message_ids_are_forgotten_by_retention(senders: Senders) -> None:
    client, vid = senders.segment(), secrets.token_hex(16)
    client.track(anonymous_id=vid, event="Once", message_id="kept-for-a-while")
    client.track(anonymous_id=vid, event="Once", message_id="kept-for-a-while")
    assert len(senders.events(vid)) == 1
    future = int(time.time() * 1000) + 10_000
    purged = with_store(senders.dep.database_url,
                        lambda store: store.purge_seen_messages(future, limit=100_000))  # fmt: skip
    assert purged >= 1
    client.track(anonymous_id=vid, event="Once", message_id="kept-for-a-while")
    assert len(senders.events(vid)) == 2


def test_too_many_messages_get_429_with_retry_after(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend="sqlite", ASHIATO_RATE_LIMIT_SITE="0.01",
                          ASHIATO_RATE_LIMIT_SITE_BURST="3")  # fmt: skip
    write_key = cli_json(dep.env, "site", "write-key", dep.site_key)["write_key"]
    dep.server.start()
    try:
        message = {"type": "track", "anonymousId": secrets.token_hex(16), "event": "Burst"}
        body = httpx.Request("POST", "/", json={"batch": [message] * 3}).content
        auth = httpx.BasicAuth(write_key, "")
        assert httpx.post(f"{dep.url}/v1/batch", content=body, auth=auth).status_code == 200
        limited = httpx.post(f"{dep.url}/v1/batch", content=body, auth=auth)
    finally:
        dep.server.stop()
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["code"] == "rate_limited"


SEGMENT_FIELDS = (
    *("type", "anonymousId", "userId", "previousId", "groupId", "messageId", "event"),
    *("name", "properties", "traits", "context", "timestamp", "sentAt"),
)
CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "ip": st.ip_addresses().map(str) | st.text(max_size=20),
        "userAgent": st.text(max_size=60),
        "page": st.fixed_dictionaries({"url": st.text(max_size=60)}),
        "traits": st.fixed_dictionaries({"email": st.emails()}),
        "consent": st.fixed_dictionaries(
            {"categoryPreferences": st.dictionaries(st.text(max_size=20), JSONISH, max_size=4)}
        ),
        "consentManagement": st.fixed_dictionaries({"allowedConsentIds": st.lists(JSONISH)}),
    },
)
PLAUSIBLE = {
    "type": st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "x"]),
    "anonymousId": st.uuids().map(str) | st.text(max_size=40),
    "userId": st.text(max_size=40) | st.integers(),
    "traits": st.fixed_dictionaries({"email": st.emails() | st.text(max_size=30)}),
    "context": CONTEXT,
    "timestamp": st.datetimes().map(lambda d: d.isoformat()) | st.text(max_size=30),
}
MESSAGE = st.fixed_dictionaries(
    {}, optional={f: PLAUSIBLE.get(f, JSONISH) | JSONISH for f in SEGMENT_FIELDS}
)
BATCH_EXTRA = st.dictionaries(st.sampled_from(["sentAt", "context", "writeKey"]), JSONISH)


@given(messages=st.lists(MESSAGE, max_size=5), batch_extra=BATCH_EXTRA)
@settings(PROPERTY, max_examples=40)
def test_whatever_a_sender_sends_is_answered_without_a_5xx(
    senders: Senders, messages: list[dict[str, Any]], batch_extra: dict[str, Any]
) -> None:
    body = json.dumps({"batch": messages} | batch_extra).encode()
    batch = senders.post("/v1/batch", body)
    assert batch.status_code in (200, 400, 413), batch.text
    single = senders.post("/v1/track", json.dumps(messages[0] if messages else {}).encode())
    assert single.status_code in (200, 400, 413), single.text
    for answer in (batch, single):
        assert answer.json() == {"success": True} or set(answer.json()) == {"code", "message"}


@pytest.mark.sqlite_only("reads the database files")
def test_write_keys_are_not_stored_in_plaintext(senders: Senders) -> None:
    stored = b"".join(p.read_bytes() for p in senders.dep.tmp.glob("ashiato.db*"))
    assert stored  # the files are there: the check below means something
    for key in (senders.write_key, senders.eu_write_key, senders.dead_key):
        assert key.encode() not in stored
    assert hashlib.sha256(senders.write_key.encode()).digest() in stored
