"""What a browser may do to a known person, against a real server on each backend.

* An unsigned claim (a form, ``ashiato('identify')``) never rewrites a known lead: it may
  fill traits still empty and is kept as that submission's own record (timeline, export),
  sealed under the lead's key and erased with it. Signed tokens and the API still update.
* Change times are the server's clock and only move forward, so ``updated_since`` sees
  a change even when its beacon waited in the browser.
* A forget beacon covers only the sending browser's anonymous data on that site.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from identity.tokens import make_token
from tests.conftest import SITE_ORIGIN, Deployment, make_deployment
from tests.servers import CHROME_UA, cli_json, with_store
from tests.waiting import clock_passes
from tracker.storage import Store

if TYPE_CHECKING:  # (imported lazily: the tests also run against the code before the fix)
    from tracker.storage.records import Submission

SIGNED_ORIGIN = "https://members.example.co.jp"
OTHER_ORIGIN = "https://blog.example.co.jp"
DAY_MS = 24 * 3600 * 1000
WAITED = 20 * 3600 * 1000
"""How long a beacon waited in the browser (offline): its event time lies this far back."""


@dataclass
class Trust:
    dep: Deployment
    key: str
    signed_site: str
    signed_secret: bytes
    other_site: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.request(method, f"{self.dep.url}{path}", headers=headers, **kwargs)

    def api_identify(self, email: str, *, vid: str | None = None, **traits: str) -> str:
        body = {"site": self.signed_site, "vid": vid or secrets.token_hex(16),
                "traits": {"email": email, **traits}}  # fmt: skip
        response = self.call("POST", "/api/v1/identify", json=body)
        assert response.status_code == 200, response.text
        lead: str = response.json()["lead"]
        return lead

    def form(self, email: str, *, vid: str | None = None, **fields: Any) -> str:
        """An unsigned identify beacon from the notice site's page; returns the vid."""
        vid = vid or secrets.token_hex(16)
        traits = {"email": email, **fields.pop("traits", {})}
        beacon = self.dep.beacon(vid=vid, type="identify", traits=traits, **fields)
        assert self.dep.post(beacon).status_code == 204
        return vid

    def lead(self, lead_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/api/v1/leads/{lead_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def timeline(self, lead_id: str) -> list[dict[str, Any]]:
        response = self.call("GET", f"/api/v1/leads/{lead_id}/timeline")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def changes_since(self, cursor: int) -> set[tuple[str, str]]:
        page = self.call("GET", "/api/v1/changes", params={"cursor": cursor, "limit": 5000})
        return {(c["lead"], c["kind"]) for c in page.json()["changes"]}

    def last_change(self) -> int:
        cursor, more = 0, True
        while more:
            page = self.call("GET", "/api/v1/changes", params={"cursor": cursor, "limit": 5000})
            cursor, more = page.json()["cursor"], page.json()["more"]
        return int(cursor)

    def listed_since(self, since: int) -> set[str]:
        page = self.call("GET", "/api/v1/leads", params={"updated_since": since, "limit": 500})
        assert page.status_code == 200, page.text
        return {lead["id"] for lead in page.json()["leads"]}


@pytest.fixture(scope="module")
def trust(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trust]:
    dep = make_deployment(tmp_path_factory.mktemp("trust"), backend=backend)
    signed = cli_json(dep.env, "site", "add", "members", "--origin", SIGNED_ORIGIN,
                      "--consent", "notice", "--identify", "signed")  # fmt: skip
    other = cli_json(dep.env, "site", "add", "blog", "--origin", OTHER_ORIGIN,
                     "--consent", "notice")  # fmt: skip
    scopes = [
        arg for scope in ("read", "identify", "privacy", "admin") for arg in ("--scope", scope)
    ]
    key = cli_json(dep.env, "apikey", "create", "trust", *scopes)["key"]
    dep.server.start()
    yield Trust(dep, key, signed["site_key"], bytes.fromhex(signed["identify_secret"]),
                other["site_key"])  # fmt: skip
    dep.server.stop()
    assert "Traceback" not in dep.server.logs(), dep.server.logs()


def _email(label: str) -> str:
    return f"{label}.{secrets.token_hex(4)}@trust.example.jp"


def _submissions(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item["kind"] == "submission"]


# -- an unsigned claim never rewrites a known lead ----------------------------------------


def test_an_unsigned_form_cannot_rewrite_a_lead_the_api_created(trust: Trust) -> None:
    email = _email("known")
    lead = trust.api_identify(email, name="Taro Yamada", company="Acme KK", phone="03-1111",
                              dept="Sales")  # fmt: skip
    known = trust.lead(lead)
    mark = trust.last_change()

    forged = {"name": "Mallory", "company": "Evil Inc", "phone": "000", "dept": "Hacked"}
    vid = trust.form(email.upper(), form="contact", traits=forged)

    after = trust.lead(lead)
    for trait in ("name", "company", "phone", "fields"):
        assert after[trait] == known[trait], trait
    assert (lead, "updated") not in trust.changes_since(mark)  # no lead.updated either
    [record] = _submissions(trust.timeline(lead))
    assert record["traits"] == {"email": email.upper(), **forged}  # kept, as sent
    assert record["filled"] == []
    assert (record["visitor"], record["site"], record["form"], record["evidence"]) == (
        vid, trust.dep.site_key, "contact", "form")  # fmt: skip


def test_an_unsigned_form_fills_only_empty_traits(trust: Trust) -> None:
    email = _email("partial")
    lead = trust.api_identify(email, name="Hanako Sato")
    mark = trust.last_change()

    trust.form(email, traits={"name": "Someone Else", "company": "Sato Shoji", "budget": "1M"})

    after = trust.lead(lead)
    assert after["name"] == "Hanako Sato"
    assert (after["company"], after["fields"]) == ("Sato Shoji", {"budget": "1M"})
    assert (lead, "updated") in trust.changes_since(mark)
    [record] = _submissions(trust.timeline(lead))
    assert record["filled"] == ["company", "budget"]
    assert record["traits"]["name"] == "Someone Else"


def test_signed_tokens_and_the_api_still_update(trust: Trust) -> None:
    email = _email("trusted")
    lead = trust.api_identify(email, name="Old Name", company="Old Co")
    assert trust.api_identify(email, name="New Name") == lead
    assert trust.lead(lead)["name"] == "New Name"

    token = make_token(trust.signed_secret, trust.signed_site, email,
                       expires=int(time.time()) + 600)  # fmt: skip
    beacon = {"site": trust.signed_site, "type": "identify", "vid": secrets.token_hex(16),
              "traits": {"email": email, "company": "New Co"}, "token": token}  # fmt: skip
    assert trust.dep.post(beacon, Origin=SIGNED_ORIGIN).status_code == 204
    after = trust.lead(lead)
    assert (after["name"], after["company"]) == ("New Name", "New Co")
    assert _submissions(trust.timeline(lead)) == []  # trusted: applied, not a claim apart


def test_the_submission_record_is_sealed_exported_and_erased(trust: Trust) -> None:
    email, forged = _email("record"), f"Forgedname{secrets.token_hex(4)}"
    lead = trust.api_identify(email, name="Real Name")
    trust.form(email, form="signup", traits={"name": forged})

    async def records(store: Store) -> list[Submission]:
        return await store.submissions_of([lead])

    [stored] = with_store(trust.dep.database_url, records)
    assert forged.encode() not in stored.claim  # personal data: ciphertext at rest
    assert email.encode() not in stored.claim

    exported = trust.call("POST", "/api/v1/privacy/export", json={"email": email})
    assert exported.status_code == 200, exported.text
    [submission] = exported.json()["form_submissions"]
    assert (submission["type"], submission["name"]) == ("identify", "signup")
    assert submission["submission"] == stored.id
    assert submission["traits"] == {"email": email, "name": forged}
    assert exported.json()["leads"][0]["name"] == "Real Name"

    erased = trust.call("POST", "/api/v1/privacy/erase", json={"email": email})
    assert erased.status_code == 200, erased.text
    assert with_store(trust.dep.database_url, records) == []


# -- change times only move forward -------------------------------------------------------


def test_a_lead_made_by_a_form_that_waited_is_listed_as_changed_now(trust: Trust) -> None:
    email, since = _email("late"), int(time.time() * 1000)
    trust.form(email, ts=1_700_000_000_000, sent=1_700_000_000_000 + WAITED)
    found = trust.call("GET", "/api/v1/leads/lookup", params={"email": email}).json()
    assert found["updated_at"] >= since
    assert found["id"] in trust.listed_since(since)


def test_updated_at_never_moves_back_when_a_late_form_fills_a_trait(trust: Trust) -> None:
    email, vid = _email("backwards"), secrets.token_hex(16)
    lead = trust.api_identify(email, vid=vid, name="Ichiro")
    before = trust.lead(lead)["updated_at"]
    clock_passes(before)  # the server's clock (ms) moves past `before`
    since = before + 1
    trust.form(email, vid=vid, traits={"company": "Late KK"},
               ts=1_700_000_000_000, sent=1_700_000_000_000 + WAITED)  # fmt: skip
    after = trust.lead(lead)
    assert after["company"] == "Late KK"
    assert after["updated_at"] >= since
    assert lead in trust.listed_since(since)


# -- a forget beacon covers only its own anonymous data on its site ----------------------


def _forget(trust: Trust, site: str, vid: str) -> None:
    """A bare forget: just a visitor id, no cookie and no Origin (anyone can send it)."""
    body = {"site": site, "type": "forget", "vid": vid}
    headers = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}
    response = httpx.post(f"{trust.dep.url}/collect", json=body, headers=headers)
    assert response.status_code == 204


def _visit(trust: Trust, vid: str, origin: str, site: str, pages: int) -> None:
    events = [trust.dep.beacon(vid=vid, site=site, url=f"{origin}/p{n}") for n in range(pages)]
    assert trust.dep.post({"events": events}, Origin=origin).status_code == 204


def _events_by_site(trust: Trust, vid: str) -> dict[str, int]:
    response = trust.call("GET", f"/api/v1/visitors/{vid}")
    counts: dict[str, int] = {}
    for event in response.json()["events"] if response.status_code == 200 else []:
        counts[event["site"]] = counts.get(event["site"], 0) + 1
    return counts


def test_a_bare_forget_cannot_wipe_a_known_persons_history(trust: Trust) -> None:
    vid, email = secrets.token_hex(16), _email("victim")
    _visit(trust, vid, SITE_ORIGIN, trust.dep.site_key, 3)
    _visit(trust, vid, OTHER_ORIGIN, trust.other_site, 2)
    trust.form(email, vid=vid, traits={"name": "Victim"})
    lead = trust.call("GET", "/api/v1/leads/lookup", params={"email": email}).json()["id"]
    before = [i for i in trust.timeline(lead) if i["kind"] in ("event", "identified")]

    for site in (trust.dep.site_key, trust.other_site):
        _forget(trust, site, vid)

    after = [i for i in trust.timeline(lead) if i["kind"] in ("event", "identified")]
    assert after == before
    assert [v["visitor"] for v in trust.lead(lead)["visitors"]] == [vid]  # the link stays


def test_a_forget_erases_only_its_sites_anonymous_events(trust: Trust) -> None:
    vid = secrets.token_hex(16)
    _visit(trust, vid, SITE_ORIGIN, trust.dep.site_key, 3)
    _visit(trust, vid, OTHER_ORIGIN, trust.other_site, 2)
    assert _events_by_site(trust, vid) == {trust.dep.site_key: 3, trust.other_site: 2}

    _forget(trust, trust.other_site, vid)

    assert _events_by_site(trust, vid) == {trust.dep.site_key: 3}
