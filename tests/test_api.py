"""The MA / admin API against a real server: keys and scopes, ids, leads, merges,
signed identification and consent (tests/test_api_schema.py fuzzes it against its
OpenAPI document)."""

from __future__ import annotations

import base64
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from starlette.routing import Route

from identity.tokens import make_token
from tests.conftest import LOOPBACK_HOOKS, SITE_ORIGIN, Deployment, make_deployment
from tests.servers import cli_json, metric, with_store
from tests.waiting import clock_passes
from tracker.api import routes
from tracker.api.openapi import PATHS

# Every test here runs once per backend, as the module builds deployments (the few that
# need no database included).
pytestmark = pytest.mark.usefixtures("backend")

SIGNED_ORIGIN = "https://signed.example.co.jp"
OPT_IN_ORIGIN = "https://optin.example.co.jp"
SCOPES = ("read", "identify", "privacy", "admin")
UNSIGNED = 'ashiato_events_dropped_total{reason="unsigned_identify"}'
API_ROUTES = [
    (method, route.path)
    for route in routes()
    if isinstance(route, Route) and route.path != "/api/v1/openapi.json"
    for method in sorted(route.methods or ())
    if method != "HEAD"
]
"""Every API route but the (public) document, straight from the router."""
NOT_YET_DOCUMENTED: dict[tuple[str, str], str] = {}
"""Routes the OpenAPI document does not describe (none): a route added without its
entry fails the tests below."""


@dataclass
class Api:
    dep: Deployment
    keys: dict[str, str]
    """scope -> a key with only that scope; "all" -> every scope; "revoked" -> revoked."""
    key_ids: dict[str, str]
    signed_site: str
    signed_secret: bytes
    opt_in_site: str

    @property
    def url(self) -> str:
        return self.dep.url

    def call(self, method: str, path: str, *, key: str = "all", **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if key:
            headers.setdefault("Authorization", f"Bearer {self.keys[key]}")
        return httpx.request(method, f"{self.url}{path}", headers=headers, **kwargs)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, json=body, **kwargs)

    def identify(self, email: str, *, vid: str | None = None, site: str | None = None,
                 **traits: str) -> str:  # fmt: skip
        body = {"site": site or self.dep.site_key, "vid": vid or secrets.token_hex(16),
                "traits": {"email": email, **traits}}  # fmt: skip
        response = self.post("/api/v1/identify", body)
        assert response.status_code == 200, response.text
        lead: str = response.json()["lead"]
        return lead

    def lead(self, lead_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/leads/{lead_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def timeline(self, lead_id: str) -> list[dict[str, Any]]:
        response = self.get(f"/api/v1/leads/{lead_id}/timeline")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def changes_after(self, cursor: int) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = self.get("/api/v1/changes", cursor=cursor).json()["changes"]
        return changes

    def last_change(self) -> int:
        cursor, more = 0, True
        while more:
            page = self.get("/api/v1/changes", cursor=cursor, limit=5000).json()
            cursor, more = page["cursor"], page["more"]
        return int(cursor)


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    dep = make_deployment(tmp_path_factory.mktemp("api"), backend=backend, **LOOPBACK_HOOKS)
    signed = cli_json(dep.env, "site", "add", "members", "--origin", SIGNED_ORIGIN,
                      "--consent", "notice", "--identify", "signed")  # fmt: skip
    opt_in = cli_json(dep.env, "site", "add", "eu", "--origin", OPT_IN_ORIGIN,
                      "--consent", "opt-in")  # fmt: skip
    created = {scope: cli_json(dep.env, "apikey", "create", scope, "--scope", scope)
               for scope in SCOPES}  # fmt: skip
    every = [arg for scope in SCOPES for arg in ("--scope", scope)]
    for name in ("all", "revoked"):
        created[name] = cli_json(dep.env, "apikey", "create", name, *every)
    cli_json(dep.env, "apikey", "revoke", created["revoked"]["id"])
    dep.server.start()
    yield Api(dep, {name: key["key"] for name, key in created.items()},
              {name: key["id"] for name, key in created.items()},
              signed["site_key"], bytes.fromhex(signed["identify_secret"]),
              opt_in["site_key"])  # fmt: skip
    dep.server.stop()
    assert "Traceback" not in dep.server.logs(), dep.server.logs()


def concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "0" * 32, path)


def scope_of(method: str, path: str) -> str:
    operation = PATHS.get(path, {}).get(method.lower())
    scope: str = operation["x-scope"] if operation else NOT_YET_DOCUMENTED[(method, path)]
    return scope


# -- keys and scopes -------------------------------------------------------------------


def test_every_api_route_is_documented_with_its_scope() -> None:
    assert len(API_ROUTES) >= 13
    for method, path in API_ROUTES:
        if (method, path) not in NOT_YET_DOCUMENTED:
            assert method.lower() in PATHS.get(path, {}), f"{method} {path} is not in openapi.py"
        assert scope_of(method, path) in SCOPES, (method, path)
    documented = {(m.upper(), p) for p, methods in PATHS.items() for m in methods}
    assert documented <= set(API_ROUTES)  # and nothing documented that is not served


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_bad_credentials_get_one_401_on_every_route(api: Api, method: str, path: str) -> None:
    unknown = f"ak_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    known_id_wrong_secret = f"ak_{api.key_ids['all']}_{secrets.token_urlsafe(32)}"
    authorizations = [
        None,
        "Bearer not-a-key",
        f"Basic {base64.b64encode(b'user:pass').decode()}",
        f"Bearer {api.keys['all']}x",
        f"Bearer {unknown}",
        f"Bearer {known_id_wrong_secret}",
        f"Bearer {api.keys['revoked']}",
        api.keys["all"],  # no scheme
    ]
    answers = set()
    for authorization in authorizations:
        headers = {"Authorization": authorization} if authorization else {}
        response = api.call(method, concrete(path), key="", headers=headers, json={})
        assert response.status_code == 401, (authorization, response.text)
        assert response.headers["www-authenticate"] == 'Bearer realm="ashiato"'
        answers.add(response.content)
    [body] = answers  # the same answer, whatever was wrong with the key
    assert set(orjson.loads(body)) == {"error"}


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_a_valid_key_without_the_scope_gets_403(api: Api, method: str, path: str) -> None:
    needed = scope_of(method, path)
    for scope in SCOPES:
        response = api.call(method, concrete(path), key=scope, json={})
        if scope == needed:
            assert response.status_code not in (401, 403), response.text
        else:
            assert response.status_code == 403, (scope, response.text)
            assert needed in response.json()["error"]


def test_the_openapi_document_is_public(api: Api) -> None:
    response = httpx.get(f"{api.url}/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.1")


# -- ids -------------------------------------------------------------------------------


def test_missing_and_malformed_ids_get_the_same_404(api: Api) -> None:
    cases = {
        "GET /api/v1/leads/{}": ("ld_" + secrets.token_hex(12), "not-a-lead"),
        "GET /api/v1/leads/{}/timeline": ("ld_" + secrets.token_hex(12), "LD_X"),
        "POST /api/v1/leads/{}/merge": ("ld_" + secrets.token_hex(12), "ld_%00"),
        "GET /api/v1/visitors/{}": (secrets.token_hex(16), "NOT-HEX"),
        "DELETE /api/v1/webhooks/{}": ("wh_" + secrets.token_hex(12), "x" * 300),
    }
    body = {"other": api.identify(f"ids-{secrets.token_hex(4)}@example.jp"), "reason": "test"}
    for template, (missing, malformed) in cases.items():
        method, path = template.split(" ")
        answers = [
            api.call(method, path.format(value), json=body if method == "POST" else None)
            for value in (missing, malformed)
        ]
        assert [a.status_code for a in answers] == [404, 404], template
        assert answers[0].content == answers[1].content, template
        assert set(answers[0].json()) == {"error"}


def test_lookup_by_email(api: Api) -> None:
    lead = api.identify("Lookup.Me@Example.jp", name="Look")
    full_width = "ＬＯＯＫＵＰ．ＭＥ＠ＥＸＡＭＰＬＥ．ＪＰ"
    for email in ("lookup.me@example.jp", full_width, " Lookup.Me@Example.jp "):
        found = api.get("/api/v1/leads/lookup", email=email)
        assert found.status_code == 200, email
        assert (found.json()["id"], found.json()["name"]) == (lead, "Look")
    unknown = api.get("/api/v1/leads/lookup", email="nobody@example.jp")
    assert unknown.status_code == 404
    for malformed in ("not-an-email", "@@", "x" * 254, "\u0000", "a@", "a @b.jp"):
        answer = api.get("/api/v1/leads/lookup", email=malformed)
        assert answer.status_code == 400, malformed  # a caller's mistake, said plainly
        assert set(answer.json()) == {"error"}
    for bad in ("", "   ", "x" * 255):
        assert api.get("/api/v1/leads/lookup", email=bad).status_code == 400
    assert api.get("/api/v1/leads/lookup").status_code == 400
    twice = api.call("GET", "/api/v1/leads/lookup?email=a@b.jp&email=lookup.me@example.jp")
    assert twice.status_code == 400


def test_reads_of_personal_data_are_audited_by_key_and_id(api: Api) -> None:
    lead = api.identify(f"audited-{secrets.token_hex(4)}@example.jp", name="Audited")
    mark = len(audit_rows(api))
    assert api.call("GET", f"/api/v1/leads/{lead}", key="read").status_code == 200
    assert api.call("GET", f"/api/v1/leads/{lead}/timeline", key="read").status_code == 200
    missing = api.call("GET", f"/api/v1/leads/ld_{secrets.token_hex(12)}", key="read")
    assert missing.status_code == 404  # nothing read, nothing recorded
    rows = audit_rows(api)[mark:]
    assert [(r.actor, r.action, r.subject) for r in rows] == [
        (f"apikey:{api.key_ids['read']}", "lead.read", lead),
        (f"apikey:{api.key_ids['read']}", "lead.timeline", lead),
    ]
    assert "Audited" not in repr(rows)


def audit_rows(api: Api) -> list[Any]:
    def read(store: Any) -> Any:
        return store.audit_page(after=0, limit=100_000)

    rows: list[Any] = with_store(api.dep.database_url, read)
    return rows


def test_an_erased_lead_reads_as_one_that_never_was(api: Api) -> None:
    tag = secrets.token_hex(4)
    email = f"erase-{tag}@example.jp"
    lead = api.identify(email, name="Gone")
    mark = api.last_change()
    erased = api.post("/api/v1/privacy/erase", {"email": email}, key="privacy")
    assert erased.status_code == 200, erased.text
    never = api.get("/api/v1/leads/lookup", email=f"never-{tag}@example.jp")
    after = api.get("/api/v1/leads/lookup", email=email)
    assert (after.status_code, after.content) == (404, never.content)
    missing = api.get(f"/api/v1/leads/ld_{secrets.token_hex(12)}")
    for path in (f"/api/v1/leads/{lead}", f"/api/v1/leads/{lead}/timeline"):
        answer = api.get(path)
        assert (answer.status_code, answer.content) == (404, missing.content), path
    listed = api.get("/api/v1/leads", limit=500)
    assert listed.status_code == 200
    assert lead not in {row["id"] for row in listed.json()["leads"]}
    assert (lead, "erased") in {(c["lead"], c["kind"]) for c in api.changes_after(mark)}


# -- listing and paging ----------------------------------------------------------------


def test_leads_list_filters_by_updated_since_and_pages_every_lead_once(api: Api) -> None:
    older = [api.identify(f"older-{n}@paging.example.jp") for n in range(3)]
    since = max(api.lead(lead)["updated_at"] for lead in older) + 1
    clock_passes(since)  # the server's clock (ms) moves past `since`
    newer = {api.identify(f"newer-{n}@paging.example.jp") for n in range(25)}
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        params = {"updated_since": since, "limit": 10} | ({"cursor": cursor} if cursor else {})
        page = api.get("/api/v1/leads", **params).json()
        seen += [lead["id"] for lead in page["leads"]]
        pages += 1
        assert all(lead["updated_at"] >= since for lead in page["leads"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == newer
    assert pages == 3
    everything = api.get("/api/v1/leads", limit=500).json()["leads"]
    assert set(older) | newer <= {lead["id"] for lead in everything}


def forged(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "e30",  # {}
        forged(1, "ld_" + "0" * 24, 3),
        forged("1", "ld_" + "0" * 24),
        forged(True, "ld_" + "0" * 24),
        forged(2**64 - 1, "ld_" + "0" * 24),  # once an SQLite overflow (500)
        forged(-1, "ld_" + "0" * 24),
        forged(1, "'; DROP TABLE leads; --"),
        "A" * 600,
    ],
)
def test_a_bad_cursor_is_400(api: Api, cursor: str) -> None:
    response = api.get("/api/v1/leads", cursor=cursor)
    assert response.status_code == 400
    assert response.json() == {"error": "cursor is not one this API gave out"}


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/leads?limit=%C2%B2",  # '²': str.isdigit() says yes, int() says no (was 500)
        "/api/v1/leads?limit=--5",  # (was 500)
        "/api/v1/leads?updated_since=" + "9" * 5000,  # int() digit limit (was 500)
        "/api/v1/changes?cursor=%D9%A1",  # Arabic-Indic one (was read as 1)
        "/api/v1/leads?limit=0",
        "/api/v1/leads?limit=501",
        "/api/v1/leads?limit=",
        "/api/v1/leads?limit=1.5",
        "/api/v1/leads?limit=1&limit=2",
        "/api/v1/changes?cursor=-1",
        "/api/v1/changes?cursor=4611686018427387905",
        "/api/v1/leads/ld_000000000000000000000000/timeline?limit=50001",
        "/api/v1/visitors/00000000000000000000000000000000?limit=x",
    ],
)
def test_bad_query_parameters_are_400(api: Api, query: str) -> None:
    response = api.call("GET", query)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}


# -- merge and unmerge -----------------------------------------------------------------


def browse_and_identify(api: Api, email: str, pages: int) -> tuple[str, str]:
    """A visitor browses the notice site anonymously, then submits a form: (lead, vid)."""
    dep, vid = api.dep, secrets.token_hex(16)
    events = [dep.beacon(vid=vid, url=f"{SITE_ORIGIN}/{email[0]}{n}") for n in range(pages)]
    events.append(dep.beacon(vid=vid, type="event", name="download", props={"n": pages}))
    assert dep.post({"events": events}).status_code == 204
    form = dep.beacon(vid=vid, type="identify", traits={"email": email, "name": email[0]})
    assert dep.post(form).status_code == 204
    found = api.get("/api/v1/leads/lookup", email=email)
    assert found.status_code == 200, found.text
    return found.json()["id"], vid


def events_of(items: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in items
                  if item["kind"] == "event")  # fmt: skip


def test_merge_then_unmerge_restores_both_timelines(api: Api) -> None:
    tag = secrets.token_hex(3)
    into, _ = browse_and_identify(api, f"a-{tag}@merge.example.jp", pages=3)
    other, _ = browse_and_identify(api, f"b-{tag}@merge.example.jp", pages=2)
    before = {lead: events_of(api.timeline(lead)) for lead in (into, other)}
    assert [len(before[into]), len(before[other])] == [5, 4]  # pages + event + identify
    mark, since = api.last_change(), api.lead(into)["updated_at"] + 1
    clock_passes(since)

    merged = api.post(f"/api/v1/leads/{into}/merge", {"other": other, "reason": "same person"})
    assert merged.status_code == 201, merged.text
    record = merged.json()
    assert (record["into"], record["from"], record["by"], record["reason"]) == (
        into, other, api.key_ids["all"], "same person")  # fmt: skip
    during = api.timeline(into)
    assert events_of(during) == sorted(before[into] + before[other])
    [merge_item] = [item for item in during if item["kind"] == "merge"]
    assert (merge_item["by"], merge_item["reason"], merge_item["from"]) == (
        api.key_ids["all"], "same person", other)  # fmt: skip
    assert api.lead(other)["id"] == into  # the merged lead's id leads to the survivor
    assert other in api.lead(into)["merged_leads"]
    listed = {lead["id"] for lead in api.get("/api/v1/leads", updated_since=since).json()["leads"]}
    assert into in listed  # the survivor's view changed
    assert other not in listed  # folded into it

    undone = api.post(f"/api/v1/leads/{into}/unmerge", {"other": other, "reason": "different"})
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_by"] == api.key_ids["all"]
    assert undone.json()["undo_reason"] == "different"
    after = {lead: api.timeline(lead) for lead in (into, other)}
    for lead in (into, other):
        assert events_of(after[lead]) == before[lead], lead
        kinds = [item["kind"] for item in after[lead]]
        assert [kinds.count("merge"), kinds.count("unmerge")] == [1, 1], lead
    [unmerge_item] = [item for item in after[into] if item["kind"] == "unmerge"]
    assert (unmerge_item["by"], unmerge_item["reason"]) == (api.key_ids["all"], "different")
    assert api.lead(other)["id"] == other
    assert api.lead(into)["merged_leads"] == []

    feed = {(c["lead"], c["kind"]) for c in api.changes_after(mark)}
    for lead in (into, other):
        assert {(lead, "merged"), (lead, "unmerged")} <= feed


def test_merge_conflicts_and_unmerge_of_no_merge(api: Api) -> None:
    tag = secrets.token_hex(3)
    a, b, c = (api.identify(f"{n}-{tag}@conflict.example.jp") for n in "abc")
    reason = {"reason": "test"}
    itself = api.post(f"/api/v1/leads/{a}/merge", {"other": a} | reason)
    assert itself.status_code == 409
    assert api.post(f"/api/v1/leads/{a}/merge", {"other": b} | reason).status_code == 201
    again = api.post(f"/api/v1/leads/{c}/merge", {"other": b} | reason)
    assert again.status_code == 409  # b is merged (into a) already
    assert api.post(f"/api/v1/leads/{a}/merge", {"other": b} | reason).status_code == 409
    # b stands for a now: merging a "into b" is merging a into itself.
    assert api.post(f"/api/v1/leads/{b}/merge", {"other": a} | reason).status_code == 409
    for into, other in ((c, a), (b, a), (a, c)):
        nothing = api.post(f"/api/v1/leads/{into}/unmerge", {"other": other} | reason)
        assert nothing.status_code == 404, (into, other)
        assert set(nothing.json()) == {"error"}
    assert api.post(f"/api/v1/leads/{a}/unmerge", {"other": b} | reason).status_code == 200
    twice = api.post(f"/api/v1/leads/{a}/unmerge", {"other": b} | reason)
    assert twice.status_code == 404
    for body in ({"other": b}, {"other": b, "reason": "  "}, {"other": 5, "reason": "x"}):
        assert api.post(f"/api/v1/leads/{a}/merge", body).status_code == 400, body


# -- identification ----------------------------------------------------------------------


def test_a_shared_browser_gives_the_second_person_no_first_touch_of_the_first(api: Api) -> None:
    dep, vid, tag = api.dep, secrets.token_hex(16), secrets.token_hex(3)
    first, second = f"first-{tag}@shared.example.jp", f"second-{tag}@shared.example.jp"

    def send(**fields: Any) -> None:
        assert dep.post(dep.beacon(vid=vid, **fields)).status_code == 204

    send(url=f"{SITE_ORIGIN}/private?utm_source=first")
    send(type="identify", traits={"email": first})
    send(url=f"{SITE_ORIGIN}/contact?utm_source=second")
    send(type="identify", traits={"email": second})
    lead_a = api.get("/api/v1/leads/lookup", email=first).json()
    lead_b = api.get("/api/v1/leads/lookup", email=second).json()
    assert lead_a["first_touch"]["landing_page"] == f"{SITE_ORIGIN}/private?utm_source=first"
    [link_b] = lead_b["visitors"]
    for touch in (lead_b["first_touch"], lead_b["last_touch"]):
        assert touch is None or touch["at"] >= link_b["covers_from"], touch
    send(url=f"{SITE_ORIGIN}/pricing?utm_source=mine")  # the second person's own visit
    send(type="identify", traits={"email": second})
    lead_b = api.get("/api/v1/leads/lookup", email=second).json()
    assert lead_b["first_touch"]["utm_source"] == "mine"
    assert lead_b["last_touch"]["utm_source"] == "mine"


def test_signed_only_site_ignores_unsigned_and_expired_identification(api: Api) -> None:
    dep, site, now = api.dep, api.signed_site, int(time.time())

    def identify(email: str, token: str | None) -> str:
        vid = secrets.token_hex(16)
        beacon = {"site": site, "type": "identify", "vid": vid,
                  "traits": {"email": email, "name": "Signed"}}  # fmt: skip
        if token is not None:
            beacon["token"] = token
        assert dep.post(beacon, Origin=SIGNED_ORIGIN).status_code == 204
        return vid

    dropped = metric(api.url, UNSIGNED)
    unsigned, expired = "unsigned@signed.example.jp", "expired@signed.example.jp"
    identify(unsigned, None)
    identify(expired, make_token(api.signed_secret, site, expired, expires=now - 5))
    assert metric(api.url, UNSIGNED) == dropped + 2
    for email in (unsigned, expired):
        assert api.get("/api/v1/leads/lookup", email=email).status_code == 404
    # An expiry in non-ASCII digits ('²' passes str.isdigit) once crashed the collector.
    assert dep.post({"site": site, "type": "identify", "vid": secrets.token_hex(16),
                     "traits": {"email": expired}, "token": "v1.².AAAA"},
                    Origin=SIGNED_ORIGIN).status_code == 204  # fmt: skip
    assert metric(api.url, UNSIGNED) == dropped + 3

    valid = "valid@signed.example.jp"
    vid = identify(valid, make_token(api.signed_secret, site, valid, expires=now + 600))
    found = api.get("/api/v1/leads/lookup", email=valid)
    assert found.status_code == 200
    [link] = found.json()["visitors"]
    assert (link["visitor"], link["evidence"], link["site"]) == (vid, "signed", site)
    assert metric(api.url, UNSIGNED) == dropped + 3


def test_identify_api_needs_marketing_consent_on_an_opt_in_site(api: Api) -> None:
    vid, email = secrets.token_hex(16), "eu.visitor@example.eu"
    body = {"site": api.opt_in_site, "vid": vid, "traits": {"email": email}}
    refused = api.post("/api/v1/identify", body, key="identify")
    assert refused.status_code == 409
    assert set(refused.json()) == {"error"}
    assert api.get("/api/v1/leads/lookup", email=email).status_code == 404
    misspelt = body | {"consent": {"analytics": True, "marketting": True}}
    assert api.post("/api/v1/identify", misspelt, key="identify").status_code == 400
    assert api.get("/api/v1/leads/lookup", email=email).status_code == 404

    granted = body | {"consent": {"analytics": True, "marketing": True}}
    accepted = api.post("/api/v1/identify", granted, key="identify")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["created"] is True
    lead = api.get("/api/v1/leads/lookup", email=email).json()
    assert lead["id"] == accepted.json()["lead"]
    assert [v["evidence"] for v in lead["visitors"]] == ["api"]
    [state] = lead["consent"]
    assert (state["site"], state["analytics"], state["marketing"]) == (api.opt_in_site, True, True)


@pytest.mark.parametrize(
    "body",
    [
        {"site": ["x"], "vid": "0" * 32, "traits": {"email": "a@b.jp"}},
        {"site": "bad key!", "vid": "0" * 32, "traits": {"email": "a@b.jp"}},
        {"site": "SITE", "vid": "0" * 31, "traits": {"email": "a@b.jp"}},
        {"site": "SITE", "vid": "0" * 32, "traits": {"name": "no email"}},
        {"site": "SITE", "vid": "0" * 32, "traits": {"email": "no-at-sign"}},
        {"site": "SITE", "vid": "0" * 32, "traits": {"email": "a@b.jp"}, "consent": {}},
        {"site": "SITE", "vid": "0" * 32, "traits": {"email": "a@b.jp"},
         "consent": {"marketing": "yes"}},
    ],
)  # fmt: skip
def test_identify_api_refuses_bad_bodies_with_400(api: Api, body: dict[str, Any]) -> None:
    if body["site"] == "SITE":
        body = body | {"site": api.dep.site_key}
    response = api.post("/api/v1/identify", body, key="identify")
    assert response.status_code == 400, response.text
    assert "events[0]" not in response.json()["error"]


def test_unknown_site_is_404(api: Api) -> None:
    body = {"site": "no-such-site", "vid": "0" * 32, "traits": {"email": "a@b.jp"}}
    assert api.post("/api/v1/identify", body, key="identify").status_code == 404


# -- bodies and webhooks ---------------------------------------------------------------


def test_json_bodies_are_checked_and_their_errors_documented(api: Api) -> None:
    url = "/api/v1/webhooks"
    as_text = api.call("POST", url, content=b"{}", headers={"Content-Type": "text/plain"})
    assert as_text.status_code == 415
    huge = orjson.dumps({"url": "http://127.0.0.1:9/" + "x" * 70_000})
    assert api.call("POST", url, content=huge).status_code == 413
    for content in (b"{", b"[]", b'"x"', b"\xff"):
        assert api.call("POST", url, content=content).status_code == 400, content
    for path, methods in PATHS.items():
        for method, operation in methods.items():
            documented = set(operation["responses"])
            assert {"400", "401", "403"} <= documented, (method, path)
            if "requestBody" in operation:
                assert {"413", "415"} <= documented, (method, path)


def test_a_client_hanging_up_mid_body_is_no_server_error(api: Api) -> None:
    head = (f"POST /api/v1/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {api.keys['admin']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", api.dep.server.port)) as sock:
        sock.sendall(head + b'{"url": "http://127.0.0.1:9/"')
    # Not a wait for something to happen but a window in which nothing may: the server
    # notices the hang-up on its own time, and its log must not show an error by then.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and "unhandled error" not in api.dep.server.logs():
        time.sleep(0.05)
    assert "unhandled error" not in api.dep.server.logs()
    assert api.call("GET", "/api/v1/webhooks", key="admin").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://[::1"},  # urlsplit raises ValueError (was 500)
        {"url": "http://[zz]/"},  # (was 500)
        {"url": "http://127.0.0.1:9/", "events": [{}]},  # unhashable event (was 500)
        {"url": "http://127.0.0.1:9/", "events": [["lead.created"]]},
        {"url": "http://127.0.0.1:9/", "events": []},
        {"url": "http://127.0.0.1:9/", "events": ["lead.bought"]},
        {"url": "http://127.0.0.1:9/a b"},  # the deliverer could never send these
        {"url": "http://127.0.0.1:9/\u0000"},
        {"url": "http://127.0.0.1:99999/"},
        {"url": "http://☃.example/"},  # not IDNA: httpx would refuse it at send time
        {"url": "ftp://127.0.0.1/"},
        {"url": "http:///path"},
        {"url": 5},
    ],
)
def test_webhook_registration_refuses_bad_input_with_400(api: Api, body: dict[str, Any]) -> None:
    response = api.post("/api/v1/webhooks", body, key="admin")
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}


def test_webhooks_register_list_and_remove(api: Api) -> None:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["lead.merged", "lead.merged"]}
    created = api.post("/api/v1/webhooks", body, key="admin")
    assert created.status_code == 201
    hook = created.json()
    assert hook["events"] == ["lead.merged"]
    assert len(bytes.fromhex(hook["secret"])) == 32
    listed = api.call("GET", "/api/v1/webhooks", key="admin").json()["webhooks"]
    assert hook["id"] in {h["id"] for h in listed}
    assert all("secret" not in h for h in listed)
    assert api.call("DELETE", f"/api/v1/webhooks/{hook['id']}", key="admin").status_code == 204
    gone = api.call("DELETE", f"/api/v1/webhooks/{hook['id']}", key="admin")
    assert gone.status_code == 404
    listed = api.call("GET", "/api/v1/webhooks", key="admin").json()["webhooks"]
    assert hook["id"] not in {h["id"] for h in listed}
