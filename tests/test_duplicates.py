"""名寄せ end to end, on each backend: leads identified over the API get match keys, the
API and the CLI list the pairs with their keys and confidence, a pair can be dismissed
(and stays so), merged through the reversible merge, and erased with its keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from tests.conftest import Deployment, make_deployment
from tests.servers import cli_json, run_cli, with_store
from tracker.storage import Store
from tracker.storage.script import Script, rows

# (traits of one lead, traits of the other, the least confidence they must be found at)
VARIANTS: list[tuple[dict[str, str], dict[str, str], str]] = [
    ({"phone": "03-1234-5678"}, {"phone": "０３(1234)5678"}, "certain"),
    ({"phone": "+81 6 6123 4567"}, {"phone": "06-6123-4567"}, "certain"),
    (
        {"name": "山田 太郎", "company": "株式会社アシアト"},
        {"name": "山田太郎", "company": "アシアト株式会社"},
        "likely",
    ),
    (
        {"name": "ﾔﾏﾀﾞ ﾊﾅｺ", "company": "ｱｼｱﾄ(株)"},
        {"name": "やまだ　はなこ", "company": "㈱アシアト"},
        "likely",
    ),
    (
        {"name": "髙橋 一郎", "company": "Ashiato Co., Ltd."},
        {"name": "高橋一郎", "company": "ASHIATO K.K."},
        "likely",
    ),
    ({"name": "Jane DOE"}, {"name": "doe jane"}, "possible"),
]
DECOYS: list[tuple[dict[str, str], dict[str, str]]] = [
    (
        {"name": "佐藤 健", "company": "株式会社アルファ"},
        {"name": "佐藤健", "company": "株式会社ベータ"},
    ),
    (
        {"name": "伊藤 次郎", "company": "株式会社ミナト", "phone": "03-9999-0000"},
        {"name": "加藤 三郎", "company": "ミナト株式会社", "phone": "+81 3 9999 0000"},
    ),
    (
        {"name": "小川 一", "company": "株式会社エー"},
        {"name": "大川 二", "company": "エー株式会社"},
    ),
]


@dataclass
class Env:
    dep: Deployment
    keys: dict[str, str]

    def call(self, method: str, path: str, key: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"}
        return httpx.request(method, f"{self.dep.url}{path}", headers=headers, **kwargs)

    def identify(self, email: str, **traits: str) -> str:
        body = {"site": self.dep.site_key, "vid": secrets.token_hex(16),
                "traits": {"email": email, **traits}}  # fmt: skip
        answer = self.call("POST", "/api/v1/identify", "identify", json=body)
        assert answer.status_code == 200, answer.text
        lead: str = answer.json()["lead"]
        return lead

    def pairs(self, **params: Any) -> dict[frozenset[str], dict[str, Any]]:
        answer = self.call("GET", "/api/v1/duplicates", "read", params=params)
        assert answer.status_code == 200, answer.text
        return {frozenset((p["lead"], p["other"])): p for p in answer.json()["pairs"]}


@pytest.fixture(scope="module")
def env(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    dep = make_deployment(tmp_path_factory.mktemp("duplicates"), backend=backend)
    keys = {scope: cli_json(dep.env, "apikey", "create", scope, "--scope", scope)["key"]
            for scope in ("read", "identify", "privacy", "admin")}  # fmt: skip
    dep.server.start()
    yield Env(dep, keys)
    dep.server.stop()
    assert "Traceback" not in dep.server.logs(), dep.server.logs()


def unique(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(4)}"


def test_variants_are_found_and_decoys_are_not_certain(env: Env) -> None:
    found_pairs, decoy_pairs = [], []
    for i, (a, b, least) in enumerate(VARIANTS):
        domain = unique(f"v{i}")
        pair = frozenset((env.identify(f"a@{domain}.example.jp", **a),
                          env.identify(f"{domain}@gmail.com", **b)))  # fmt: skip
        found_pairs.append((pair, least))
    for i, (a, b) in enumerate(DECOYS):
        pair = frozenset((env.identify(f"a@{unique(f'd{i}')}.example.jp", **a),
                          env.identify(f"b@{unique(f'e{i}')}.example.jp", **b)))  # fmt: skip
        decoy_pairs.append(pair)
    listed = env.pairs()
    order = ["certain", "likely", "possible"]
    for pair, least in found_pairs:
        assert pair in listed, (pair, least)
        assert order.index(listed[pair]["confidence"]) <= order.index(least), listed[pair]
    for pair in decoy_pairs:
        assert pair not in listed or listed[pair]["confidence"] != "certain", listed.get(pair)
    assert listed[found_pairs[0][0]]["matched"] == ["phone"]
    certain = env.pairs(confidence="certain")
    assert all(p["confidence"] == "certain" for p in certain.values())
    assert found_pairs[0][0] in certain
    assert found_pairs[2][0] not in certain  # name + company: likely


def test_upper_case_email_is_the_same_lead(env: Env) -> None:
    email = f"{unique('Taro')}@Example.JP"
    assert env.identify(email.upper()) == env.identify(email.lower())


def test_a_trait_update_keys_the_lead_again(env: Env) -> None:
    domain = unique("upd")
    first = env.identify(f"a@{domain}.example.jp")
    second = env.identify(f"b@{domain}-x.example.jp", phone="045-111-2222")
    assert frozenset((first, second)) not in env.pairs()
    env.identify(f"a@{domain}.example.jp", phone="+81 45 111 2222")  # evidence api: updates
    assert env.pairs()[frozenset((first, second))]["confidence"] == "certain"


def test_pages_list_every_pair_once(env: Env) -> None:
    for i in range(3):
        phone = f"03-7{i}00-{secrets.randbelow(9000) + 1000}"
        env.identify(f"p@{unique('pg')}.example.jp", phone=phone)
        env.identify(f"q@{unique('pg')}.example.jp", phone=phone)
    everything = env.pairs(limit=1000)
    seen: list[frozenset[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = env.call("GET", "/api/v1/duplicates", "read", params=params).json()
        seen += [frozenset((p["lead"], p["other"])) for p in page["pairs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(everything) >= 3
    for bad in ({"confidence": "sure"}, {"limit": "0"}, {"cursor": "xyz"}):
        answer = env.call("GET", "/api/v1/duplicates", "read", params=bad)
        assert answer.status_code == 400, (bad, answer.text)


def phone_pair(env: Env) -> tuple[str, str]:
    phone = f"03-5{secrets.randbelow(900) + 100}-{secrets.randbelow(9000) + 1000}"
    return (env.identify(f"m@{unique('pair')}.example.jp", phone=phone),
            env.identify(f"n@{unique('pair')}.example.jp", phone=phone))  # fmt: skip


def test_dismissed_pairs_stay_dismissed_by_api_and_cli(env: Env) -> None:
    by_api, by_cli = phone_pair(env), phone_pair(env)
    assert {frozenset(by_api), frozenset(by_cli)} <= env.pairs().keys()
    body = {"lead": by_api[1], "other": by_api[0]}
    answer = env.call("POST", "/api/v1/duplicates/dismiss", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["lead"] == min(by_api)
    assert env.call("POST", "/api/v1/duplicates/dismiss", "read", json=body).status_code == 403
    done = cli_json(env.dep.env, "leads", "not-same", *by_cli)
    assert {done["lead"], done["other"]} == set(by_cli)
    listed = env.pairs()
    assert frozenset(by_api) not in listed
    assert frozenset(by_cli) not in listed
    again = env.call("POST", "/api/v1/duplicates/dismiss", json=body)
    assert again.status_code == 201  # marking it twice is harmless
    cli = cli_json(env.dep.env, "leads", "duplicates")
    assert {frozenset((p["lead"], p["other"])) for p in cli["pairs"]} == set(env.pairs())


def test_dismissing_unknown_or_one_lead_is_refused(env: Env) -> None:
    lead = env.identify(f"solo@{unique('solo')}.example.jp")
    cases = [({"lead": lead, "other": "ld_" + secrets.token_hex(12)}, 404),
             ({"lead": lead, "other": "nope"}, 404), ({"lead": lead, "other": lead}, 409),
             ({"lead": lead}, 400)]  # fmt: skip
    for body, status in cases:
        answer = env.call("POST", "/api/v1/duplicates/dismiss", json=body)
        assert answer.status_code == status, (body, answer.text)
    result = run_cli(env.dep.env, "leads", "not-same", lead, "ld_" + "0" * 24, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_merging_a_pair_goes_through_the_reversible_merge(env: Env) -> None:
    lead, other = phone_pair(env)
    body = {"other": other, "reason": "名寄せ"}
    merged = env.call("POST", f"/api/v1/leads/{lead}/merge", json=body)
    assert merged.status_code == 201, merged.text
    assert frozenset((lead, other)) not in env.pairs()
    third = env.identify(f"o@{unique('third')}.example.jp",
                         phone=_phone_of(env, other))  # fmt: skip
    assert frozenset((lead, third)) in env.pairs()  # the merged lead's keys count for its lead
    undone = env.call("POST", f"/api/v1/leads/{lead}/unmerge", json=body)
    assert undone.status_code == 200, undone.text
    assert frozenset((lead, other)) in env.pairs()


def _phone_of(env: Env, lead: str) -> str:
    answer = env.call("GET", f"/api/v1/leads/{lead}", "read")
    phone: str = answer.json()["phone"]
    return phone


def _stored_keys(lead: str) -> Script[list[bytes]]:
    found = yield rows("SELECT value FROM match_keys WHERE lead_id = ?", lead)
    return [bytes(r[0]) for r in found]


def _keys_of(env: Env, lead: str) -> list[bytes]:
    return with_store(env.dep.database_url, lambda store: store.read(_stored_keys(lead)))  # type: ignore[attr-defined]


def test_erasure_removes_match_keys_and_dismissals_and_export_holds_none(env: Env) -> None:
    lead, other = phone_pair(env)
    keys = _keys_of(env, lead)
    assert len(keys) >= 2  # email, phone
    assert env.call("POST", "/api/v1/duplicates/dismiss",
                    json={"lead": lead, "other": other}).status_code == 201  # fmt: skip
    exported = env.call("POST", "/api/v1/privacy/export", "privacy", json={"lead": lead})
    assert exported.status_code == 200, exported.text
    for key in keys:
        assert key.hex() not in exported.text
    erased = env.call("POST", "/api/v1/privacy/erase", "privacy", json={"lead": lead})
    assert erased.status_code == 200, erased.text
    assert _keys_of(env, lead) == []
    assert all(lead not in pair for pair in env.pairs())
    assert _keys_of(env, other)  # the other lead keeps its own


async def _rewrite_phone(store: Store, lead_id: str) -> None:
    """A trait update that was not followed by its keys (a crash between the two)."""
    lead = await store.lead(lead_id)
    assert lead is not None
    assert await store.update_lead_fields(lead_id, {"phone": lead.phone}, lead.updated_at)


def test_a_trait_update_drops_keys_until_match_keys_computes_them(env: Env) -> None:
    lead, other = phone_pair(env)
    assert _keys_of(env, other)
    with_store(env.dep.database_url, partial(_rewrite_phone, lead_id=other))
    assert _keys_of(env, other) == []  # never keys of traits that are no longer there
    page = env.call("GET", "/api/v1/duplicates", "read").json()
    assert page["pending"] >= 1
    assert frozenset((lead, other)) not in env.pairs()
    result = cli_json(env.dep.env, "leads", "match-keys")
    assert result["keyed"] >= 1
    assert result["pending"] == 0
    assert env.pairs()[frozenset((lead, other))]["matched"] == ["phone"]


@pytest.mark.sqlite_only("reads the SQLite file's bytes")
def test_match_keys_hold_no_readable_value(env: Env, backend: str) -> None:
    name, phone = "渡邊 澄子", "06-6999-8888"
    env.identify(f"s@{unique('canary')}.example.jp", name=name, phone=phone, company="カナリア㈱")
    db = env.dep.tmp / "ashiato.db"
    raw = b"".join(p.read_bytes() for p in (db, db.with_name("ashiato.db-wal")) if p.exists())
    for plain in ("渡辺澄子", "+81669998888", "かなりあ", "canary"):
        assert plain.encode() not in raw, plain


def test_strong_kinds_are_never_crowded_out_by_weak_ones(env: Env) -> None:
    for _ in range(2):
        company = f"株式会社{unique('crowd')}"
        env.identify(f"x@{unique('c')}.example.jp", company=company)
        env.identify(f"y@{unique('c')}.example.jp", company=company)
    phone_pair(env)

    async def candidates(store: Store, kinds: list[str], limit: int) -> set[tuple[str, str]]:
        return set((await store.match_candidates(kinds, max_shared=50, limit=limit)).pairs)

    url = env.dep.database_url
    phones = with_store(url, partial(candidates, kinds=["phone"], limit=10**6))
    both = with_store(url, partial(candidates, kinds=["phone", "company"], limit=len(phones)))
    assert both == phones
    more = with_store(url, partial(candidates, kinds=["phone", "company"], limit=10**6))
    assert len(more) >= len(phones) + 2
