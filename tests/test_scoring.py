"""Lead scoring end to end: rules loaded by the CLI and the API, events scored right
after ingest (the anonymous past included once identified), the ledger adding up, the
``lead.hot`` webhook once per upward crossing, merges and unmerges, rescoring, and the
hand-over list and CSV."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LOOPBACK_HOOKS, SITE_ORIGIN, Deployment, make_deployment
from tests.servers import cli_json, free_port, run_cli
from tests.test_webhooks import Receiver
from tests.waiting import wait_for, wait_until

RULES = """
[grades]
hot = 100
warm = 40
rearm_below = 80

[[rule]]
id = "pricing"
name = "料金ページを閲覧"
when = { type = "pageview", path = "/pricing*" }
points = 40

[[rule]]
id = "form"
name = "問い合わせフォーム送信"
when = { type = "identify" }
points = 30
fire = "once"

[[rule]]
id = "free-mail"
axis = "fit"
when = { trait = "email_domain", in = ["gmail.com", "yahoo.co.jp"] }
points = -20

[[rule]]
id = "manager"
axis = "fit"
when = { trait = "title", contains = ["部長", "manager"] }
points = 30
"""


@pytest.fixture(scope="module")
def dep(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("scoring")
    deployment = make_deployment(tmp, backend=backend, ASHIATO_WEBHOOK_RETRY_SECONDS="0.2",
                                 **LOOPBACK_HOOKS)  # fmt: skip
    (tmp / "rules.toml").write_text(RULES, encoding="utf-8")
    loaded = cli_json(deployment.env, "scoring", "load", str(tmp / "rules.toml"), "--site",
                      deployment.site_key)  # fmt: skip
    assert loaded["version"] == 1
    deployment.server.start()
    yield deployment
    deployment.server.stop()


@pytest.fixture(scope="module")
def key(dep: Deployment) -> str:
    made = cli_json(dep.env, "apikey", "create", "scorer", "--scope", "read", "--scope", "admin")
    return str(made["key"])


def api(dep: Deployment, key: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{dep.url}/api/v1{path}",
                         headers={"Authorization": f"Bearer {key}"}, **kw)  # fmt: skip


def view(dep: Deployment, vid: str, path: str = "/pricing") -> None:
    beacon = dep.beacon(vid=vid, url=f"{SITE_ORIGIN}{path}")
    assert dep.post(beacon).status_code == 204


def identify(dep: Deployment, vid: str, email: str, **traits: str) -> str:
    beacon = dep.beacon(vid=vid, type="identify", name="contact",
                        traits={"email": email, **traits})  # fmt: skip
    assert dep.post(beacon).status_code == 204
    return email


def lead_of(dep: Deployment, key: str, email: str) -> str:
    found = wait_for(lambda: api(dep, key, "GET", "/leads/lookup", params={"email": email}),
                     lambda r: r.status_code == 200, what="the lead")  # fmt: skip
    return str(found.json()["id"])


def score(dep: Deployment, key: str, lead: str) -> dict[str, Any]:
    answer = api(dep, key, "GET", f"/leads/{lead}/score")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def score_is(dep: Deployment, key: str, lead: str, value: float) -> dict[str, Any]:
    return wait_for(lambda: score(dep, key, lead), lambda s: abs(s["score"] - value) < 0.5,
                    what=f"a score of {value}")  # fmt: skip


def adjust(dep: Deployment, key: str, lead: str, points: int) -> None:
    body = {"site": dep.site_key, "points": points, "reason": "営業から電話で確認"}
    answer = api(dep, key, "POST", f"/leads/{lead}/score", json=body)
    assert answer.status_code == 201, answer.text


def test_lead_hot_is_sent_once_per_upward_crossing(dep: Deployment, key: str) -> None:
    rx = Receiver(free_port())
    rx.start()
    try:
        target = {"url": f"http://127.0.0.1:{rx.port}/hook", "events": ["lead.hot"]}
        hook = api(dep, key, "POST", "/webhooks", json=target)
        assert hook.status_code == 201, hook.text
        vid = secrets.token_hex(16)
        consent = dep.beacon(
            vid=vid, type="consent", consent={"analytics": True, "marketing": True}
        )
        assert dep.post(consent).status_code == 204
        view(dep, vid)  # anonymous: scored for the lead once identified
        email = identify(dep, vid, f"buyer-{secrets.token_hex(3)}@example.co.jp",
                         name="=HYPERLINK(\"x\")", title="営業部長")  # fmt: skip
        lead = lead_of(dep, key, email)
        before = wait_for(lambda: score(dep, key, lead),
                          lambda s: abs(s["score"] - 70) < 0.5 and s["fit"] == 30,
                          what="engagement 70, fit 30")  # fmt: skip
        assert [e["rule"] for e in before["ledger"] if e["axis"] == "engagement"] == [
            "pricing",
            "form",
        ]  # the anonymous page view came first
        assert before["fit"] == 30
        assert before["fit_grade"] == "A"
        view(dep, vid)  # 110: hot
        score_is(dep, key, lead, 110)
        wait_until(lambda: len(rx.deliveries) == 1, what="the first lead.hot")
        adjust(dep, key, lead, -20)  # 90: still above rearm_below (80): not re-armed
        adjust(dep, key, lead, +20)  # 110 again: no second delivery
        adjust(dep, key, lead, -40)  # 70: below 80, re-armed
        view(dep, vid)  # 110: hot again
        final = score_is(dep, key, lead, 110)
        wait_until(lambda: len(rx.deliveries) == 2, what="the second lead.hot")
        assert final["grade"] == "hot"
        counted = sum(e["counts"] for e in final["ledger"] if e["axis"] == "engagement")
        assert final["score"] == pytest.approx(counted, abs=1e-3)
        manual = [e for e in final["ledger"] if e["kind"] == "manual"]
        assert [e["points"] for e in manual] == [-20, 20, -40]
        assert all(e["actor"].startswith("apikey:") and e["reason"] for e in manual)
        payload = rx.deliveries[0]["body"]
        assert payload["type"] == "lead.hot"
        data = payload["data"]
        assert data["lead"] == lead
        assert data["grade"] == "hot"
        assert data["site"] == dep.site_key
        assert data["lead_data"]["email"] == email
        assert data["lead_data"]["fields"]["title"] == "営業部長"
        assert data["top_entries"][0]["rule"] == "pricing"
        assert data["last_pages"][0]["url"].endswith("/pricing")
        assert data["consent"]["marketing"] is True
        assert data["lead_data"]["first_touch"]["landing_page"].endswith("/pricing")
        assert {d["body"]["data"]["lead"] for d in rx.deliveries} == {lead}
    finally:
        rx.stop()
    hot = api(dep, key, "GET", "/leads", params={"grade": "hot", "sort": "-score"})
    assert hot.status_code == 200, hot.text
    listed = dict(zip([x["id"] for x in hot.json()["leads"]], hot.json()["standings"],
                      strict=True))  # fmt: skip
    assert listed[lead]["grade"] == "hot"
    csv = run_cli(dep.env, "leads", "hot", "--csv").stdout.encode("utf-8")
    assert csv.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    line = next(x for x in csv.decode("utf-8-sig").splitlines() if lead in x)
    assert email in line
    assert "'=HYPERLINK" in line  # formula-safe


def test_merge_and_unmerge_move_entries_exactly(dep: Deployment, key: str) -> None:
    va, vb = secrets.token_hex(16), secrets.token_hex(16)
    view(dep, va)
    a = lead_of(dep, key, identify(dep, va, f"a-{secrets.token_hex(3)}@gmail.com"))
    view(dep, vb)
    b = lead_of(dep, key, identify(dep, vb, f"b-{secrets.token_hex(3)}@example.jp"))
    before_merge = wait_for(lambda: score(dep, key, a),
                            lambda s: abs(s["score"] - 70) < 0.5 and s["fit"] == -20,
                            what="engagement 70, fit -20")["ledger"]  # fmt: skip
    score_is(dep, key, b, 70)
    assert score(dep, key, a)["fit"] == -20
    merged = api(dep, key, "POST", f"/leads/{a}/merge", json={"other": b, "reason": "同一人物"})
    assert merged.status_code == 201, merged.text
    together = score_is(dep, key, a, 140)
    assert {e["lead"] for e in together["ledger"]} == {a, b}
    assert together["fit"] == -20  # the surviving lead's profile only
    undone = api(dep, key, "POST", f"/leads/{a}/unmerge", json={"other": b, "reason": "別人"})
    assert undone.status_code == 200, undone.text
    alone = score_is(dep, key, a, 70)
    assert [e["event"] for e in alone["ledger"]] == [e["event"] for e in before_merge]
    assert {e["lead"] for e in alone["ledger"]} == {a}
    assert {e["lead"] for e in score_is(dep, key, b, 70)["ledger"]} == {b}


def test_rules_over_the_api_and_rescoring(dep: Deployment, key: str) -> None:
    vid = secrets.token_hex(16)
    view(dep, vid, "/pricing/a")
    lead = lead_of(dep, key, identify(dep, vid, f"r-{secrets.token_hex(3)}@example.jp"))
    score_is(dep, key, lead, 70)
    current = api(dep, key, "GET", "/scoring/rules", params={"site": dep.site_key})
    assert current.status_code == 200, current.text
    document = current.json()["document"]
    document["rule"][0]["points"] = 100
    put = api(dep, key, "PUT", "/scoring/rules", params={"site": dep.site_key}, json=document)
    assert put.status_code == 200, put.text
    version = put.json()["version"]
    assert version == current.json()["version"] + 1
    bad = api(dep, key, "PUT", "/scoring/rules", params={"site": dep.site_key},
              json={"rule": [{"id": "x", "when": {"type": "visit"}, "points": 1}]})  # fmt: skip
    assert bad.status_code == 400
    assert "when.type" in bad.json()["error"]
    view(dep, vid, "/pricing/b")  # until it is rescored, the lead is scored under its rules
    score_is(dep, key, lead, 110)
    dry = cli_json(dep.env, "scoring", "rescore", "--dry-run")["sites"][0]
    assert dry["rules_version"] == version
    assert any(m["lead"] == lead and m["after"] == pytest.approx(230, abs=0.5)
               for m in dry["largest_moves"])  # fmt: skip
    assert score(dep, key, lead)["score"] == pytest.approx(
        110, abs=0.5
    )  # the dry run wrote nothing
    done = cli_json(dep.env, "scoring", "rescore")["sites"][0]
    assert done["leads"] >= 1
    rescored = score_is(dep, key, lead, 230)
    assert {e["rules_version"] for e in rescored["ledger"] if e["kind"] != "manual"} == {version}
    again = cli_json(dep.env, "scoring", "rescore")["sites"][0]
    assert again["leads"] == 0  # resumable: nothing left to replay
    missing = run_cli(dep.env, "scoring", "load", "/nonexistent.toml", "--site", dep.site_key,
                      check=False)  # fmt: skip
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_bad_rule_files_are_refused_plainly(dep: Deployment, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "a"\nwhen = {trait = "title"}\npoints = 1\n', "utf-8")
    result = run_cli(dep.env, "scoring", "load", str(bad), "--site", dep.site_key, check=False)
    assert result.returncode == 2
    assert "needs in, not_in, contains or exists" in result.stderr


def test_erasing_a_lead_erases_its_ledger(dep: Deployment, key: str) -> None:
    vid = secrets.token_hex(16)
    view(dep, vid)
    lead = lead_of(dep, key, identify(dep, vid, f"gone-{secrets.token_hex(3)}@example.jp"))
    scored = wait_for(lambda: score(dep, key, lead), lambda s: len(s["ledger"]) == 2,
                      what="the lead's ledger")  # fmt: skip

    def listed() -> list[str]:
        params = {"grade": scored["grade"], "limit": "500"}
        return [x["id"] for x in api(dep, key, "GET", "/leads", params=params).json()["leads"]]

    assert lead in listed()
    run_cli(dep.env, "privacy", "erase", "--lead", lead, "--yes")
    assert api(dep, key, "GET", f"/leads/{lead}/score").status_code == 404
    assert lead not in listed()
