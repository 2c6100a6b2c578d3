"""Property-based hostile input over every public endpoint and the API (hypothesis).

Whatever the body, headers or query, the answer is a documented 2xx/4xx with a JSON
error for 4xx — never a 5xx, never a traceback in the server log (the module's server
fixture checks the log at teardown). Replays are idempotent, enumeration finds nothing,
and answers do not reveal whether an email is known.
"""

from __future__ import annotations

import gzip
import json
import secrets
import string
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Deployment
from tests.servers import cli_json, metric, with_store

COLLECT_OK = {204, 400, 413, 415, 429}
PROPERTY = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Printable headers (httpx refuses CR/LF and edge whitespace itself; raw-socket cases are
# in test_hostile.py).
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200
).map(str.strip)
ANY_TEXT = st.text(max_size=300)  # control characters, RTL, emoji, NUL …
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(ANY_TEXT, inner, max_size=5),
    max_leaves=20,
)
FIELDS = (
    "site",
    "type",
    "vid",
    "sid",
    "url",
    "referrer",
    "title",
    "ts",
    "sent",
    "name",
    "props",
    "traits",
    "consent",
    "cid",
    "policy",
    "token",
    "form",
    "gpc",
)


def dumps(value: Any) -> bytes:
    """JSON as a hostile client would send it (lone surrogates escaped, big ints)."""
    return json.dumps(value, ensure_ascii=True).encode()


def assert_clean(response: httpx.Response, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:200])
    if 400 <= response.status_code < 500 and response.status_code != 431:
        error = response.json()["error"]
        assert isinstance(error, str)
        assert error


@given(body=st.binary(max_size=3000))
@PROPERTY
def test_collect_any_bytes(deployment: Deployment, body: bytes) -> None:
    assert_clean(deployment.post(body), COLLECT_OK)


@given(
    mutations=st.dictionaries(st.sampled_from(FIELDS), JSONISH, min_size=1, max_size=4),
    batch=st.booleans(),
)
@PROPERTY
def test_collect_mutated_beacons(deployment: Deployment, mutations: dict, batch: bool) -> None:  # type: ignore[type-arg]
    beacon = deployment.beacon() | mutations
    body = {"events": [deployment.beacon(), beacon]} if batch else beacon
    assert_clean(deployment.post(dumps(body)), COLLECT_OK)


@given(
    origin=HEADER_TEXT,
    agent=HEADER_TEXT,
    ctype=HEADER_TEXT,
    forwarded=HEADER_TEXT,
    cookie=HEADER_TEXT,
    gpc=HEADER_TEXT,
)
@PROPERTY
def test_collect_hostile_headers(deployment: Deployment, **headers: str) -> None:
    names = {
        "origin": "Origin",
        "agent": "User-Agent",
        "ctype": "Content-Type",
        "forwarded": "X-Forwarded-For",
        "cookie": "Cookie",
        "gpc": "Sec-GPC",
    }
    sent = {names[k]: v for k, v in headers.items()}
    response = httpx.post(
        f"{deployment.url}/collect", content=dumps(deployment.beacon()), headers=sent
    )
    assert_clean(response, COLLECT_OK)


@given(
    params=st.dictionaries(
        st.sampled_from(["site", "vid", "url", "referrer", "title", "type", "name", "x"]),
        ANY_TEXT,
        max_size=6,
    )
)
@PROPERTY
def test_pixel_any_query(deployment: Deployment, params: dict[str, str]) -> None:
    clean = {
        k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()
    }
    response = httpx.get(f"{deployment.url}/p.gif", params=clean)
    assert response.status_code in {200, 400, 429}
    if response.status_code == 400:
        assert response.json()["error"]


@pytest.fixture(scope="module")
def key(deployment: Deployment) -> str:
    return str(
        cli_json(
            deployment.env,
            "apikey",
            "create",
            "hostile",
            "--scope",
            "read",
            "--scope",
            "identify",
            "--scope",
            "privacy",
            "--scope",
            "admin",
        )["key"]
    )


API_POSTS = [
    "/api/v1/identify",
    "/api/v1/consent",
    "/api/v1/privacy/export",
    "/api/v1/privacy/erase",
    "/api/v1/webhooks",
]
API_GETS = ["/api/v1/leads", "/api/v1/leads/lookup", "/api/v1/changes", "/api/v1/privacy/requests"]
API_OK = {200, 201, 204, 400, 404, 409, 413, 415, 429}


@given(path=st.sampled_from(API_POSTS), body=JSONISH)
@PROPERTY
def test_api_any_json_body(deployment: Deployment, key: str, path: str, body: Any) -> None:
    response = httpx.post(
        f"{deployment.url}{path}", content=dumps(body), headers={"Authorization": f"Bearer {key}"}
    )
    assert_clean(response, API_OK)


@given(
    path=st.sampled_from(API_GETS),
    params=st.dictionaries(
        st.sampled_from(["email", "cursor", "limit", "updated_since", "x"]), ANY_TEXT, max_size=4
    ),
)
@PROPERTY
def test_api_any_query(deployment: Deployment, key: str, path: str, params: dict[str, str]) -> None:
    clean = {
        k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()
    }
    response = httpx.get(
        f"{deployment.url}{path}", params=clean, headers={"Authorization": f"Bearer {key}"}
    )
    assert_clean(response, API_OK)


@given(segment=st.text(alphabet=string.printable, min_size=1, max_size=80))
@PROPERTY
def test_enumerating_ids_finds_nothing(deployment: Deployment, key: str, segment: str) -> None:
    # Any id at all, percent-encoded into the path; dots too, or the client would read
    # "." and ".." as path steps and ask for the list one level up.
    segment = quote(segment, safe="").replace(".", "%2E")
    for template in (
        "/api/v1/leads/{}",
        "/api/v1/leads/{}/timeline",
        "/api/v1/visitors/{}",
        "/api/v1/privacy/requests/{}",
    ):
        response = httpx.get(
            deployment.url + template.format(segment), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code in {404, 405, 400, 429}


def test_a_gzip_bomb_is_never_inflated(deployment: Deployment, key: str) -> None:
    bomb = gzip.compress(b"{" + b" " * 50_000_000 + b"}", 9)  # 50 MB in ~50 kB
    collect = httpx.post(
        f"{deployment.url}/collect",
        content=bomb[:60_000],
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )
    assert collect.status_code == 415
    api = httpx.post(
        f"{deployment.url}/api/v1/identify",
        content=bomb[:60_000],
        headers={"Content-Encoding": "gzip", "Authorization": f"Bearer {key}"},
    )
    assert api.status_code == 415


def test_replayed_consent_and_identify_beacons_change_nothing(deployment: Deployment) -> None:
    vid, cid = secrets.token_hex(16), secrets.token_hex(16)
    grant = deployment.beacon(
        vid=vid, type="consent", cid=cid, consent={"analytics": True, "marketing": True}
    )
    identify = deployment.beacon(
        vid=vid, type="identify", traits={"email": f"replay.{cid[:6]}@example.jp"}
    )
    for _ in range(3):  # the same bodies, replayed
        assert deployment.post(grant).status_code == 204
        assert deployment.post(identify).status_code == 204
    receipts = with_store(deployment.database_url, lambda s: s.consent_receipts_of([vid]))
    assert [r.id for r in receipts] == [cid]
    links = with_store(deployment.database_url, lambda s: s.links_of_visitor(vid))
    assert len(links) == 1


def test_answers_do_not_reveal_whether_an_email_is_known(deployment: Deployment) -> None:
    known = f"known.{secrets.token_hex(4)}@example.jp"
    assert (
        deployment.post(deployment.beacon(type="identify", traits={"email": known})).status_code
        == 204
    )
    before = metric(deployment.url, 'ashiato_events_dropped_total{reason="invalid"}')
    answers = {
        email: deployment.post(deployment.beacon(type="identify", traits={"email": email}))
        for email in (known, f"unknown.{secrets.token_hex(4)}@example.jp")
    }
    assert {r.status_code for r in answers.values()} == {204}
    assert len({(r.content, tuple(sorted(r.headers.keys()))) for r in answers.values()}) == 1
    assert metric(deployment.url, 'ashiato_events_dropped_total{reason="invalid"}') == before
