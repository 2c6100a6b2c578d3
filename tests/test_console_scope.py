"""Site limits in the console (tracker/scope.py): the admin limits keys and users to
sites on their pages; a legal or marketing user limited to site A sees nothing of site B
(its people are not found, exports hold A's part only, the queue and the audit log show
none of B's); admin cannot be limited. SQLite only: the reads are the API's, tested on
both databases in tests/test_site_scope.py."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson
import pytest

from tests.conftest import LOOPBACK_HOOKS, SITE_ORIGIN, Deployment, make_deployment
from tests.console import PASSWORD, add_users, post, signed_in
from tests.servers import cli_json, with_store
from tracker.settings import Settings
from tracker.wiring import open_parts

B_ORIGIN = "https://client-b.example.co.jp"
LEAD_LINK = re.compile(r'href="/admin/leads/(ld_[0-9a-f]+)"')


@dataclass
class Console:
    dep: Deployment
    a: str
    b: str
    leads: dict[str, str] = field(default_factory=dict)
    vids: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def visit(self, name: str, site: str, pages: int) -> None:
        """A visitor on ``site`` who consents, views pages and sends the form."""
        origin = SITE_ORIGIN if site == self.a else B_ORIGIN
        vid = self.vids[f"{name}@{'a' if site == self.a else 'b'}"] = secrets.token_hex(16)
        email = self.emails.setdefault(name, f"{name}-{secrets.token_hex(3)}@example.co.jp")
        beacons = [self.dep.beacon(site=site, vid=vid, type="consent",
                                   consent={"analytics": True, "marketing": True})]  # fmt: skip
        beacons += [self.dep.beacon(site=site, vid=vid, url=f"{origin}/{name}/{n}")
                    for n in range(pages)]  # fmt: skip
        beacons.append(self.dep.beacon(site=site, vid=vid, type="identify", form="contact",
                                       traits={"email": email, "name": "山田 太郎"}))  # fmt: skip
        for beacon in beacons:
            assert self.dep.post(beacon, Origin=origin).status_code == 204


def limited_user(dep: Deployment, email: str, role: str, *sites: str) -> subprocess.Popen[str]:
    args = [a for s in sites for a in ("--site", s)]
    return subprocess.Popen(
        [sys.executable, "-m", "tracker", "user", "add", email, "--role", role, *args,
         "--password-stdin", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dep.env,
        text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    dep = make_deployment(tmp_path_factory.mktemp("console-scope"), backend="sqlite",
                          ASHIATO_RATE_LIMIT_IP="0", **LOOPBACK_HOOKS)  # fmt: skip
    b = cli_json(dep.env, "site", "add", "client-b", "--origin", B_ORIGIN,
                 "--consent", "notice")["site_key"]  # fmt: skip
    add_users(dep.env, ("admin@example.jp", "admin"), ("legal@example.jp", "legal"))
    made = [limited_user(dep, f"{r}-a@example.jp", r, dep.site_key) for r in ("legal", "marketing")]
    refused = limited_user(dep, "root-a@example.jp", "admin", dep.site_key)
    for proc in made:
        out, err = proc.communicate(PASSWORD + "\n", timeout=60)
        assert proc.returncode == 0, err
        assert orjson.loads(out)["sites"] == [dep.site_key]
    _, err = refused.communicate(PASSWORD + "\n", timeout=60)
    assert refused.returncode == 2, err
    assert "admin" in err
    dep.server.start()
    w = Console(dep, dep.site_key, b)
    w.visit("alice", w.a, 2)
    w.visit("bob", w.b, 2)
    w.visit("carol", w.b, 2)
    w.visit("carol", w.a, 2)
    for name, email in w.emails.items():
        index = _index(dep, email)
        found = with_store(dep.database_url, lambda s, i=index: s.lead_by_index(i))  # type: ignore[misc]
        assert found is not None
        w.leads[name] = found.id
    assert len(set(w.leads.values())) == 3  # carol is one lead, on both sites
    yield w
    dep.server.stop()
    assert "Traceback" not in dep.server.logs()


def _index(dep: Deployment, email: str) -> bytes:
    """The lead's email index, as the server computes it (its personal-data keys)."""

    async def work() -> bytes:
        parts = await open_parts(Settings.from_env(dep.env), migrate=False)
        try:
            return parts.personal.email_index(email)
        finally:
            await parts.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()


def test_admin_limits_keys_and_users_to_sites(world: Console) -> None:
    admin = signed_in(world.dep.url, "admin@example.jp")
    created = post(admin, "/admin/keys", {"name": "client A", "scope": "read", "site": world.a})
    assert created.status_code == 200, created.text
    key = next(k for k in with_store(world.dep.database_url, lambda s: s.list_api_keys())
               if k.name == "client A")  # fmt: skip
    a_id = next(s.id for s in with_store(world.dep.database_url, lambda s: s.list_sites())
                if s.key == world.a)  # fmt: skip
    assert key.sites == (a_id,)
    assert "<td>shop</td>" in created.text  # the key's sites, by name
    unknown = post(admin, "/admin/keys", {"name": "x", "scope": "read", "site": "nope"})
    assert unknown.status_code == 400
    added = post(admin, "/admin/users", {"action": "add", "email": "mk-a2@example.jp",
                                         "role": "marketing", "site": world.a})  # fmt: skip
    assert added.status_code == 200, added.text
    users = with_store(world.dep.database_url, lambda s: s.console_users())
    assert next(u for u in users if u.role == "marketing" and u.sites).sites == (a_id,)
    root = post(admin, "/admin/users", {"action": "add", "email": "root2@example.jp",
                                        "role": "admin", "site": world.a})  # fmt: skip
    assert root.status_code == 400
    assert len(with_store(world.dep.database_url, lambda s: s.console_users())) == len(users)


def test_a_limited_legal_user_sees_nothing_of_other_sites(world: Console) -> None:
    w = world
    everyone, legal = (
        signed_in(w.dep.url, "legal@example.jp"),
        signed_in(w.dep.url, "legal-a@example.jp"),
    )
    about_bob = post(everyone, "/admin/requests", {"kind": "export", "by": "lead",
                                                   "value": w.leads["bob"]})  # fmt: skip
    assert about_bob.status_code == 303
    bob_request = about_bob.headers["location"]
    for by, value in (("lead", w.leads["bob"]), ("email", w.emails["bob"]),
                      ("visitor", w.vids["bob@b"])):  # fmt: skip
        hidden = post(legal, "/admin/requests", {"kind": "export", "by": by, "value": value})
        unknown = post(legal, "/admin/requests", {"kind": "export", "by": "lead",
                                                  "value": "ld_" + "0" * 24})  # fmt: skip
        assert hidden.status_code == unknown.status_code == 404
        assert post(legal, "/admin/consent", {"by": by, "q": value}).status_code == 404
    assert legal.get(bob_request).status_code == 404
    assert bob_request.rsplit("/", 1)[1] not in legal.get("/admin/requests").text
    assert everyone.get(bob_request).status_code == 200
    filed = post(legal, "/admin/requests", {"kind": "export", "by": "lead",
                                            "value": w.leads["carol"]})  # fmt: skip
    assert filed.status_code == 303
    exported = post(legal, filed.headers["location"] + "/export", {"format": "json"})
    assert exported.status_code == 200, exported.text
    bundle = orjson.loads(exported.content)
    assert B_ORIGIN not in exported.text
    assert w.vids["carol@b"] not in exported.text
    assert {e["site"] for e in bundle["events"]} == {w.a}
    assert [e["url"] for e in bundle["events"] if e["type"] == "pageview"] == [
        f"{SITE_ORIGIN}/carol/0", f"{SITE_ORIGIN}/carol/1"]  # fmt: skip
    consent = post(legal, "/admin/consent", {"by": "lead", "q": w.leads["carol"]})
    assert consent.status_code == 200
    assert "client-b" not in consent.text
    assert "client-b" in post(everyone, "/admin/consent", {"by": "lead",
                                                          "q": w.leads["carol"]}).text  # fmt: skip
    audit = legal.get("/admin/audit").text
    assert "legal-a" not in audit  # ids only, and only this user's own rows:
    actors = set(re.findall(r"user:(u_[0-9a-f]+)", audit))
    assert len(actors) == 1
    assert legal.get("/admin/ledger").status_code == 403
    assert "client-b" not in legal.get("/admin/retention").text
