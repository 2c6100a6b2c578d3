"""Site limits over the API (tracker/scope.py): a key limited to site A sees no lead,
visitor, timeline event, change, export content, score or duplicate of site B; a person
on both sites is seen with A's part only; another site's lead is the same 404 as an
unknown id; an unlimited key still sees everything."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import SITE_ORIGIN, Deployment, make_deployment
from tests.servers import cli_json, run_cli
from tests.waiting import wait_for

pytestmark = pytest.mark.usefixtures("backend")

B_ORIGIN = "https://client-b.example.co.jp"
RULES = {"grades": {"hot": 100, "warm": 40, "rearm_below": 80},
         "rule": [{"id": "view", "when": {"type": "pageview"}, "points": 60,
                   "fire": "every"}]}  # fmt: skip


@dataclass
class World:
    dep: Deployment
    a: str
    b: str
    keys: dict[str, str]
    leads: dict[str, str] = field(default_factory=dict)
    vids: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"}
        return httpx.request(method, f"{self.dep.url}/api/v1{path}", headers=headers, **kwargs)

    def get(self, path: str, key: str, **params: Any) -> httpx.Response:
        return self.call("GET", path, key, params=params)

    def ok(self, path: str, key: str, **params: Any) -> Any:
        answer = self.get(path, key, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def view(self, site: str, vid: str, page: str) -> None:
        origin = SITE_ORIGIN if site == self.a else B_ORIGIN
        beacon = self.dep.beacon(site=site, vid=vid, url=f"{origin}{page}", title=page)
        assert self.dep.post(beacon, Origin=origin).status_code == 204

    def person(
        self, name: str, site: str, *, pages: int, phone: str | None = None, full: str = ""
    ) -> str:
        """A visitor on ``site`` who views ``pages`` pages and is identified there."""
        vid = self.vids[f"{name}@{'a' if site == self.a else 'b'}"] = secrets.token_hex(16)
        for n in range(pages):
            self.view(site, vid, f"/{name}/{n}")
        email = self.emails.setdefault(name, f"{name}-{secrets.token_hex(3)}@example.co.jp")
        traits = {"email": email, "name": full or f"{name} 太郎"}
        traits |= {"phone": phone} if phone else {}
        answer = self.call("POST", "/identify", "all",
                           json={"site": site, "vid": vid, "traits": traits})  # fmt: skip
        assert answer.status_code == 200, answer.text
        self.leads[name] = answer.json()["lead"]
        return self.leads[name]


@pytest.fixture(scope="module")
def world(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    dep = make_deployment(tmp_path_factory.mktemp("scope"), backend=backend)
    b = cli_json(dep.env, "site", "add", "client-b", "--origin", B_ORIGIN,
                 "--consent", "notice")["site_key"]  # fmt: skip
    every = [a for s in ("read", "identify", "privacy", "admin") for a in ("--scope", s)]
    unlimited = cli_json(dep.env, "apikey", "create", "agency", *every)
    limited = cli_json(dep.env, "apikey", "create", "client A", "--scope", "read",
                       "--scope", "privacy", "--scope", "identify",
                       "--site", dep.site_key)  # fmt: skip
    assert limited["sites"] == [dep.site_key]
    assert unlimited["sites"] is None
    dep.server.start()
    w = World(dep, dep.site_key, b, {"all": unlimited["key"], "A": limited["key"]})
    for site in (w.a, w.b):
        put = w.call("PUT", "/scoring/rules", "all", params={"site": site}, json=RULES)
        assert put.status_code == 200, put.text
    w.person("alice", w.a, pages=2)
    w.person("bob", w.b, pages=3, phone="03-1234-5678", full="山田 太郎")
    w.person("bobby", w.b, pages=1, phone="03-1234-5678", full="山田 太郎")  # a pair on B
    w.person("dora", w.a, pages=1, phone="06-9999-0000", full="佐藤 花子")
    w.person("dori", w.a, pages=1, phone="06-9999-0000", full="佐藤 花子")  # a pair on A
    w.person("carol", w.b, pages=2)  # carol is on B first: her first touch is B's
    assert w.person("carol", w.a, pages=2) == w.leads["carol"]
    w.person("erin", w.b, pages=1)  # identified on A too by the last test
    w.vids["anon@b"] = secrets.token_hex(16)
    w.view(w.b, w.vids["anon@b"], "/anonymous")
    yield w
    dep.server.stop()
    assert "Traceback" not in dep.server.logs(), dep.server.logs()


def lead_ids(leads: list[dict[str, Any]]) -> set[str]:
    return {lead["id"] for lead in leads}


def test_admin_keys_cannot_be_site_limited(world: World) -> None:
    refused = run_cli(world.dep.env, "apikey", "create", "x", "--scope", "admin",
                      "--site", world.a, check=False)  # fmt: skip
    assert refused.returncode == 2
    assert "admin" in refused.stderr
    unknown = run_cli(world.dep.env, "apikey", "create", "x", "--scope", "read",
                      "--site", "no-such-site", check=False)  # fmt: skip
    assert unknown.returncode == 2
    assert "unknown site" in unknown.stderr


def test_the_lead_list_shows_only_the_sites_leads(world: World) -> None:
    w, on_a = world, {world.leads[n] for n in ("alice", "dora", "dori", "carol")}
    seen = lead_ids(w.ok("/leads", "A", limit=2)["leads"])
    cursor = w.ok("/leads", "A", limit=2)["next_cursor"]
    while cursor:  # paging through a limited key's pages
        page = w.ok("/leads", "A", limit=2, cursor=cursor)
        seen |= lead_ids(page["leads"])
        cursor = page["next_cursor"]
    assert seen - {w.leads["erin"]} == on_a  # erin: on A too once the last test ran
    assert lead_ids(w.ok("/leads", "all")["leads"]) == set(w.leads.values())  # unlimited: all


def test_another_sites_lead_is_the_same_404_as_an_unknown_id(world: World) -> None:
    w, bob = world, world.leads["bob"]
    unknown = "ld_" + secrets.token_hex(12)
    for path in ("/leads/{}", "/leads/{}/timeline", "/leads/{}/score"):
        hidden, missing = w.get(path.format(bob), "A"), w.get(path.format(unknown), "A")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.content == missing.content
        assert w.get(path.format(bob), "all").status_code == 200
    lookup = w.get("/leads/lookup", "A", email=w.emails["bob"])
    assert lookup.status_code == 404
    assert lookup.content == w.get("/leads/lookup", "A", email="nobody@example.co.jp").content
    assert w.get("/leads/lookup", "A", email=w.emails["carol"]).status_code == 200


def test_a_person_on_both_sites_is_seen_with_the_sites_part_only(world: World) -> None:
    w, carol = world, world.leads["carol"]
    lead = w.ok(f"/leads/{carol}", "A")
    assert {v["site"] for v in lead["visitors"]} == {w.a}
    assert {c["site"] for c in lead["consent"]} <= {w.a}
    assert lead["first_touch"]["landing_page"].startswith(SITE_ORIGIN)
    full = w.ok(f"/leads/{carol}", "all")
    assert {v["site"] for v in full["visitors"]} == {w.a, w.b}
    assert full["first_touch"]["landing_page"].startswith(B_ORIGIN)  # B came first
    items = w.ok(f"/leads/{carol}/timeline", "A")["items"]
    assert {i.get("site") for i in items if i["kind"] != "merge"} == {w.a}
    assert [i["url"] for i in items if i.get("type") == "pageview"] == [
        f"{SITE_ORIGIN}/carol/0", f"{SITE_ORIGIN}/carol/1"]  # fmt: skip
    assert B_ORIGIN not in str(items)
    everything = w.ok(f"/leads/{carol}/timeline", "all")["items"]
    assert B_ORIGIN in str(everything)


def test_visitors_of_other_sites_are_not_found(world: World) -> None:
    w = world
    for vid in (w.vids["anon@b"], w.vids["bob@b"], w.vids["carol@b"]):
        assert w.get(f"/visitors/{vid}", "A").status_code == 404
        assert w.get(f"/visitors/{vid}", "all").status_code == 200
    mine = w.ok(f"/visitors/{w.vids['carol@a']}", "A")
    assert {e["site"] for e in mine["events"]} == {w.a}
    assert {k["site"] for k in mine["links"]} == {w.a}


def test_the_change_feed_carries_only_the_sites_leads(world: World) -> None:
    w = world
    limited = {c["lead"] for c in w.ok("/changes", "A", limit=5000)["changes"]}
    on_a = {w.leads[n] for n in ("alice", "dora", "dori", "carol")}
    assert limited - {w.leads["erin"]} == on_a
    assert {c["lead"] for c in w.ok("/changes", "all", limit=5000)["changes"]} == set(
        w.leads.values()
    )


def test_exports_hold_only_the_sites_part(world: World) -> None:
    w = world
    carol = w.call("POST", "/privacy/export", "A", json={"lead": w.leads["carol"]})
    assert carol.status_code == 200, carol.text
    bundle = carol.json()
    assert B_ORIGIN not in carol.text
    assert w.vids["carol@b"] not in carol.text
    assert {e["site"] for e in bundle["events"]} == {w.a}
    assert {k["site"] for k in bundle["links"]} == {w.a}
    assert bundle["webhook_deliveries"] == []
    assert bundle["leads"][0]["first_touch"]["landing_page"].startswith(SITE_ORIGIN)
    full = w.call("POST", "/privacy/export", "all", json={"lead": w.leads["carol"]})
    assert B_ORIGIN in full.text
    unknown = w.call("POST", "/privacy/export", "A", json={"lead": "ld_" + secrets.token_hex(12)})
    for subject in ({"lead": w.leads["bob"]}, {"email": w.emails["bob"]},
                    {"visitor": w.vids["anon@b"]}):  # fmt: skip
        hidden = w.call("POST", "/privacy/export", "A", json=subject)
        assert hidden.status_code == 404
        assert hidden.content == unknown.content
        erase = w.call("POST", "/privacy/erase", "A", json=subject)
        assert erase.status_code == 404
    assert w.ok(f"/leads/{w.leads['bob']}", "all")  # still there
    requests = w.ok("/privacy/requests", "A")["requests"]
    assert {r["subject"] for r in requests} == {w.leads["carol"]}


def test_scores_and_hot_lists_are_of_the_sites_only(world: World) -> None:
    w, carol = world, world.leads["carol"]
    mine = wait_for(lambda: w.ok(f"/leads/{carol}/score", "A"), lambda s: s["score"] >= 100,
                    what="carol's score on A")  # fmt: skip
    assert mine["site"] == w.a
    assert len(mine["ledger"]) == 2
    assert all(e["object"].startswith("/carol/") for e in mine["ledger"])
    assert w.get(f"/leads/{carol}/score", "A", site=w.b).status_code == 404
    assert w.ok(f"/leads/{carol}/score", "all", site=w.b)["site"] == w.b
    bob = w.leads["bob"]
    wait_for(lambda: w.ok(f"/leads/{bob}/score", "all"), lambda s: s["score"] >= 100,
             what="bob's score on B")  # fmt: skip
    hot = w.ok("/leads", "A", grade="hot")
    assert bob not in lead_ids(hot["leads"])
    assert carol in lead_ids(hot["leads"])
    assert {s["site"] for s in hot["standings"]} == {w.a}
    assert bob in lead_ids(w.ok("/leads", "all", grade="hot")["leads"])
    assert w.get("/leads", "A", grade="hot", site=w.b).status_code == 404
    assert w.get("/scoring/rules", "A", site=w.b).status_code == 404
    assert w.get("/scoring/rules", "A", site=w.a).status_code == 200


def test_duplicates_are_pairs_of_the_sites_leads(world: World) -> None:
    w = world
    b_pair = {w.leads["bob"], w.leads["bobby"]}
    a_pair = {w.leads["dora"], w.leads["dori"]}

    def pairs(key: str) -> list[set[str]]:
        found = w.ok("/duplicates", key, confidence="certain")["pairs"]
        return [{p["lead"], p["other"]} for p in found]

    wait_for(lambda: pairs("all"), lambda p: b_pair in p and a_pair in p,
             what="both pairs suggested")  # fmt: skip
    assert pairs("A") == [a_pair]


def test_a_limited_key_cannot_write_into_another_site(world: World) -> None:
    w = world
    body = {"site": w.b, "vid": secrets.token_hex(16), "traits": {"email": "x@example.co.jp"}}
    hidden = w.call("POST", "/identify", "A", json=body)
    unknown = w.call("POST", "/identify", "A", json=body | {"site": "no-such-site"})
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.content == unknown.content
    consent = {"site": w.b, "vid": body["vid"], "consent": {"analytics": True}}
    assert w.call("POST", "/consent", "A", json=consent).status_code == 404
    # erin is known on B only: to A's key, identifying her on A makes a new lead
    mine = {"site": w.a, "vid": secrets.token_hex(16), "traits": {"email": w.emails["erin"]}}
    linked = w.call("POST", "/identify", "A", json=mine)
    assert linked.status_code == 200, linked.text
    assert linked.json()["lead"] == w.leads["erin"]
    assert linked.json()["created"] is True
    assert w.get(f"/leads/{w.leads['erin']}", "A").status_code == 200  # on A now


def test_reports_are_of_the_sites_only(world: World) -> None:
    w, day = world, {"from": "2026-01-01", "to": "2026-01-02"}
    assert w.get("/reports/dashboard", "A", site=w.a, **day).status_code == 200
    hidden = w.get("/reports/dashboard", "A", site=w.b, **day)
    unknown = w.get("/reports/dashboard", "A", site="no-such-site", **day)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.content == unknown.content
    assert w.get("/reports/dashboard", "all", site=w.b, **day).status_code == 200


def test_a_limited_key_erases_the_whole_person_it_sees(world: World) -> None:
    """Frank gave two addresses, one on each site; merged, he is one person. A's key sees
    the lead (not the one merged in from B) and erasing it leaves nothing of either."""
    w = world
    on_a, on_b = w.person("frank", w.a, pages=1), w.person("franky", w.b, pages=1)
    merged = w.call("POST", f"/leads/{on_a}/merge", "all", json={"other": on_b, "reason": "名寄せ"})
    assert merged.status_code == 201, merged.text
    assert w.ok(f"/leads/{on_a}", "A")["merged_leads"] == []
    assert w.ok(f"/leads/{on_a}", "all")["merged_leads"] == [on_b]
    erased = w.call("POST", "/privacy/erase", "A", json={"lead": on_a})
    assert erased.status_code == 200, erased.text
    for lead in (on_a, on_b):
        assert w.get(f"/leads/{lead}", "all").status_code == 404
    assert w.get("/leads/lookup", "all", email=w.emails["franky"]).status_code == 404
