"""Hostile and malformed requests: each gets its expected 2xx/4xx, never a 5xx.

The module's server fixture also fails the module if its log holds a traceback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import SITE_ORIGIN, Deployment
from tests.servers import CHROME_UA, with_store

Body = Callable[[Deployment], bytes]


def j(make: Callable[[Deployment], Any]) -> Body:
    return lambda dep: json.dumps(make(dep)).encode()


def raw(text: str | bytes) -> Body:
    return lambda dep: text.encode() if isinstance(text, str) else text


def with_key(template: str) -> Body:
    return lambda dep: template.replace("KEY", dep.site_key).encode()


VID = "0123456789abcdef0123456789abcdef"
NESTED = "[" * 5000 + "]" * 5000

# (case id, body, extra headers, expected status)
CASES: list[tuple[str, Body, dict[str, str], int]] = [
    ("bad json", raw("{bad"), {}, 400),
    ("top-level array", raw("[1, 2]"), {}, 400),
    ("top-level string", raw('"pageview"'), {}, 400),
    ("empty body", raw(""), {}, 400),
    ("deep nesting", raw(NESTED), {}, 400),
    ("nested props", j(lambda d: d.beacon(type="event", name="x", props={"a": {"b": 1}})), {}, 400),
    ("invalid utf-8", raw(b'{"site": "\xff\xfe", "type": "pageview"}'), {}, 400),
    (
        "lone surrogate",
        with_key(
            '{"site":"KEY","type":"pageview","vid":"'
            + VID
            + '","url":"https://x.jp/","title":"\\ud800"}'
        ),
        {},
        400,
    ),
    ("NUL in title", j(lambda d: d.beacon(title="a\x00b")), {}, 400),
    ("ANSI in event name", j(lambda d: d.beacon(type="event", name="\x1b[31mred")), {}, 400),
    ("vid is a number", j(lambda d: d.beacon(vid=12345)), {}, 400),
    ("vid not ours (uuid)", j(lambda d: d.beacon(vid="6f1c2a3e-0000-4000-8000-00000000")), {}, 400),
    ("ts is a string", j(lambda d: d.beacon(ts="yesterday")), {}, 400),
    ("ts negative", j(lambda d: d.beacon(ts=-5)), {}, 400),
    ("ts absurd", j(lambda d: d.beacon(ts=10**20)), {}, 400),
    ("huge url", j(lambda d: d.beacon(url=SITE_ORIGIN + "/" + "a" * 5000)), {}, 400),
    ("javascript: url", j(lambda d: d.beacon(url="javascript:alert(1)")), {}, 400),
    ("unknown type", j(lambda d: d.beacon(type="purchase")), {}, 400),
    ("event without name", j(lambda d: d.beacon(type="event")), {}, 400),
    (
        "too many props",
        j(lambda d: d.beacon(type="event", name="x", props={f"k{i}": i for i in range(40)})),
        {},
        400,
    ),
    ("events not a list", j(lambda d: {"events": {"a": 1}}), {}, 400),
    ("events empty", j(lambda d: {"events": []}), {}, 400),
    ("event not an object", j(lambda d: {"events": [d.beacon(), 7]}), {}, 400),
    ("too many events", j(lambda d: {"events": [d.beacon()] * 51}), {}, 413),
    ("body over limit", raw(b'{"pad": "' + b"x" * 70_000 + b'"}'), {}, 413),
    ("gzip body", raw(b"\x1f\x8b\x08\x00"), {"Content-Encoding": "gzip"}, 415),
    ("form content type", j(lambda d: d.beacon()), {"Content-Type": "multipart/form-data"}, 415),
    (
        "duplicate keys: last wins",
        with_key(
            '{"site":"nope","site":"KEY","type":"pageview","vid":"'
            + VID
            + '","url":"https://x.jp/"}'
        ),
        {},
        204,
    ),
    ("unknown site", j(lambda d: d.beacon(site="not-a-site")), {}, 204),
    ("foreign origin", j(lambda d: d.beacon()), {"Origin": "https://evil.example"}, 204),
    ("null origin", j(lambda d: d.beacon()), {"Origin": "null"}, 204),
    ("no user agent", j(lambda d: d.beacon()), {"User-Agent": ""}, 204),
    ("huge user agent", j(lambda d: d.beacon()), {"User-Agent": "Mozilla/5.0 " + "x" * 6000}, 204),
    ("sql injection in title", j(lambda d: d.beacon(title="'); DROP TABLE events; --")), {}, 204),
    ("forged x-forwarded-for", j(lambda d: d.beacon()), {"X-Forwarded-For": "8.8.8.8"}, 204),
    ("CRLF in header value", j(lambda d: d.beacon()), {"X-Note": "a%0d%0aSet-Cookie: x=1"}, 204),
    (
        "future timestamps",
        j(lambda d: d.beacon(ts=4_000_000_000_000, sent=4_000_000_000_001)),
        {},
        204,
    ),
]


@pytest.mark.parametrize(
    ("body", "headers", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_collect_answers_each_hostile_body(
    deployment: Deployment, body: Body, headers: dict[str, str], status: int
) -> None:
    default = {"Origin": SITE_ORIGIN, "User-Agent": CHROME_UA, "Content-Type": "text/plain"}
    response = httpx.post(
        f"{deployment.url}/collect", content=body(deployment), headers=default | headers
    )
    assert response.status_code == status, response.text
    if status >= 400:
        error = response.json()["error"]
        assert isinstance(error, str)
        assert error


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("GET", "/collect", {}, 405),
        ("PUT", "/collect", {}, 405),
        ("GET", "/../../etc/passwd", {}, 404),
        ("GET", "/t.js/../../pyproject.toml", {}, 404),
        ("GET", "/p.gif", {"site": "'; DROP TABLE sites; --"}, 400),
        ("GET", "/p.gif", {"vid": VID}, 400),
        (
            "GET",
            "/p.gif",
            {"site": "x", "vid": VID, "url": "https://x.jp/", "type": "identify"},
            400,
        ),
    ],
)
def test_other_routes_refuse_cleanly(
    deployment: Deployment, method: str, path: str, params: dict[str, str], status: int
) -> None:
    response = httpx.request(method, f"{deployment.url}{path}", params=params)
    assert response.status_code == status
    assert "error" in response.json()


def test_many_headers_and_a_slow_client_do_not_break_the_server(deployment: Deployment) -> None:
    headers = {f"X-H{i}": "v" * 100 for i in range(300)}
    response = httpx.get(f"{deployment.url}/healthz", headers=headers)
    assert response.status_code in (200, 400, 431)
    # A client that sends half a request and stalls must not block others.
    port = int(deployment.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as stalled:
        stalled.sendall(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        assert httpx.get(f"{deployment.url}/healthz", timeout=5).status_code == 200


def test_forged_forwarded_for_is_not_believed_and_injection_is_inert(
    deployment: Deployment,
) -> None:
    beacon = deployment.beacon(title="'); DROP TABLE events; --")
    response = httpx.post(
        f"{deployment.url}/collect",
        content=orjson.dumps(beacon),
        headers={"Origin": SITE_ORIGIN, "User-Agent": CHROME_UA, "X-Forwarded-For": "8.8.8.8"},
    )
    assert response.status_code == 204
    [event] = with_store(deployment.database_url, lambda s: s.visitor_events(beacon["vid"]))
    assert event.ip == "127.0.0.0"
    assert event.title == beacon["title"]
