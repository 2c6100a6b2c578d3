"""The console over HTTP against a real server: roles enforced on every page and action,
form tokens, session lifetimes and fixation, throttling, re-authentication before
export and erasure, the audit trail of what a user saw and did, TOTP, the user CLI.
(SQLite only: the tables behind it run on both databases in test_console_storage.)"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.conftest import LOOPBACK_HOOKS, Deployment, make_deployment
from tests.console import (
    COOKIE,
    PASSWORD,
    add_user,
    add_users,
    age_session,
    csrf,
    post,
    session_of,
    signed_in,
    signin,
)
from tests.servers import cli_json, metric, run_cli, with_store
from tracker.console.sessions import ABSOLUTE_MS, IDLE_MS, REAUTH_MS
from tracker.storage.records import Site

LEGAL_PAGES = ("/admin/requests", "/admin/consent", "/admin/retention", "/admin/audit",
               "/admin/ledger")  # fmt: skip
ADMIN_PAGES = ("/admin/sites", "/admin/keys", "/admin/webhooks", "/admin/users")


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = make_deployment(tmp_path_factory.mktemp("console"), backend="sqlite",
                                 ASHIATO_RATE_LIMIT_IP="0", **LOOPBACK_HOOKS)  # fmt: skip
    add_users(deployment.env, *((f"{r}@example.jp", r) for r in ("legal", "admin", "marketing")))
    deployment.server.start()
    yield deployment
    deployment.server.stop()
    assert "Traceback" not in deployment.server.logs()


def new_lead(dep: Deployment, email: str) -> str:
    """A visitor who browsed and sent a form; the visitor id."""
    vid = secrets.token_hex(16)
    assert dep.post(dep.beacon(vid=vid)).status_code == 204
    identify = dep.beacon(vid=vid, type="identify", form="contact",
                          traits={"email": email, "name": "Taro Yamada"})  # fmt: skip
    assert dep.post(identify).status_code == 204
    return vid


def stored(dep: Deployment, method: str) -> list[Any]:
    """What the server's database holds now (read directly: no CLI process to start)."""
    found: list[Any] = with_store(dep.database_url, lambda store: getattr(store, method)())
    return found


def site_named(dep: Deployment, name: str) -> Site:
    return next(s for s in stored(dep, "list_sites") if s.name == name)


def user_of(dep: Deployment, client: httpx.Client) -> str:
    session = session_of(dep, client)
    assert session is not None
    return session.user_id


def now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def test_each_role_is_refused_the_others_pages_and_actions(dep: Deployment) -> None:
    clients = {role: signed_in(dep.url, f"{role}@example.jp") for role in
               ("legal", "admin", "marketing")}  # fmt: skip
    mine = {"legal": LEGAL_PAGES, "admin": ADMIN_PAGES, "marketing": ()}
    actions = {
        "legal": [("/admin/requests", {"kind": "export", "by": "email", "value": "x@example.jp"}),
                  ("/admin/audit", {})],
        "admin": [("/admin/keys", {"name": "sneaky", "scope": "admin"}),
                  ("/admin/sites", {"name": "sneaky", "origins": "https://a.example.test",
                                    "consent": "notice"}),
                  ("/admin/users", {"action": "add", "email": "sneaky@example.jp",
                                    "role": "admin"}),
                  ("/admin/webhooks", {"url": "http://127.0.0.1:9/sneaky"})],
    }  # fmt: skip
    keys_before = stored(dep, "list_api_keys")
    users_before = len(stored(dep, "console_users"))
    for role, client in clients.items():
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/account").status_code == 200
        token = csrf(client)
        for owner, pages in mine.items():
            for path in pages:
                expected = 200 if owner == role else 403
                assert client.get(path).status_code == expected, (role, path)
            for path, data in actions.get(owner, []):
                if owner != role:
                    answer = post(client, path, data, token=token)
                    assert answer.status_code == 403, (role, path)
                    assert "Not allowed" in answer.text or "許可されていません" in answer.text
    assert stored(dep, "list_api_keys") == keys_before
    assert "sneaky" not in str(stored(dep, "list_sites"))
    assert len(stored(dep, "console_users")) == users_before
    assert stored(dep, "requests") == []


def test_posts_without_the_sessions_form_token_change_nothing(dep: Deployment) -> None:
    admin = signed_in(dep.url, "admin@example.jp")
    other = signed_in(dep.url, "admin@example.jp")  # the same user, another session
    data = {"name": "forged", "scope": "read"}
    before = stored(dep, "list_api_keys")
    assert admin.post("/admin/keys", data=data).status_code == 403
    assert post(admin, "/admin/keys", data, token="0" * 64).status_code == 403
    assert post(admin, "/admin/keys", data, token=csrf(other)).status_code == 403
    as_json = admin.post("/admin/keys", json={"csrf": csrf(admin)} | data)
    assert as_json.status_code == 403
    assert stored(dep, "list_api_keys") == before
    created = post(admin, "/admin/keys", data)  # with its own token it works
    assert created.status_code == 200
    assert re.search(r"ak_[0-9a-f]{16}_", created.text)


def test_signed_out_expired_and_ended_sessions_cannot_act(dep: Deployment) -> None:
    add_user(dep.env, "sessions@example.jp", "admin")  # the CLI, --password-stdin
    before = len(stored(dep, "list_api_keys"))

    def refused(client: httpx.Client, token: str) -> None:
        answer = client.post("/admin/keys", data={"csrf": token, "name": "late", "scope": "read"})
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/admin/signin")

    gone = signed_in(dep.url, "sessions@example.jp")
    token, cookie = csrf(gone), gone.cookies.get(COOKIE)
    assert post(gone, "/admin/signout", {}).headers["location"] == "/admin/signin"
    gone.cookies.set(COOKIE, cookie or "", domain="127.0.0.1")  # kept by an attacker
    refused(gone, token)

    idle = signed_in(dep.url, "sessions@example.jp")
    token = csrf(idle)
    age_session(dep, idle, seen_at=now_ms() - IDLE_MS - 60_000)
    refused(idle, token)
    assert session_of(dep, idle) is None  # ended, not only refused

    old = signed_in(dep.url, "sessions@example.jp")
    token = csrf(old)
    age_session(dep, old, created_at=now_ms() - ABSOLUTE_MS - 60_000)
    refused(old, token)

    first, second = (signed_in(dep.url, "sessions@example.jp") for _ in range(2))
    token = csrf(second)
    assert post(first, "/admin/signout/everywhere", {}).status_code == 303
    refused(second, token)
    assert len(stored(dep, "list_api_keys")) == before


def test_session_fixation_fails(dep: Deployment) -> None:
    attacker, answer = signin(dep.url, "admin@example.jp")
    planted = attacker.cookies.get(COOKIE)  # a real session id the attacker knows
    victim, answer = signin(dep.url, "legal@example.jp", planted=planted)
    assert answer.status_code == 303
    issued = victim.cookies.get(COOKIE)
    assert issued
    assert issued != planted
    assert "HttpOnly" in answer.headers["set-cookie"]
    assert "SameSite=Strict" in answer.headers["set-cookie"]
    # The planted id did not become the victim's session: it is not signed in at all.
    assert attacker.get("/admin/requests").status_code == 303
    blind = httpx.Client(base_url=dep.url, cookies={COOKIE: secrets.token_urlsafe(32)})
    for path in ("/admin/audit?actor=%00", "/admin/requests/pr_%00", "/admin/consent?q=ld_%00"):
        assert victim.get(path).status_code == 400, path  # NUL never reaches a database
    assert blind.get("/admin/").status_code == 303


def test_sign_in_is_throttled_per_account(dep: Deployment) -> None:
    add_users(dep.env, ("throttled@example.jp", "marketing"))
    for _ in range(5):
        assert signin(dep.url, "throttled@example.jp", "wrong password!!")[1].status_code == 401
    client, answer = signin(dep.url, "throttled@example.jp")  # the right password, too late
    assert answer.status_code == 429
    assert COOKIE not in client.cookies
    assert signin(dep.url, "marketing@example.jp")[1].status_code == 303  # others are not


def test_export_and_erase_need_a_recent_password_and_are_audited(dep: Deployment) -> None:
    email = f"subject.{secrets.token_hex(4)}@example.jp"
    new_lead(dep, email)
    legal = signed_in(dep.url, "legal@example.jp")
    received = post(legal, "/admin/requests", {"kind": "export", "by": "email", "value": email})
    assert received.status_code == 303
    request_page = received.headers["location"]
    assert "export" in legal.get(request_page).text
    age_session(dep, legal, confirmed_at=now_ms() - REAUTH_MS - 60_000)
    later = post(legal, f"{request_page}/export", {"format": "json"})
    assert later.headers["location"] == f"/admin/confirm?next={request_page}"
    wrong = post(legal, "/admin/confirm", {"password": "not it at all", "next": request_page})
    assert wrong.status_code == 401
    assert post(legal, "/admin/confirm", {"password": PASSWORD, "next": request_page}
                ).headers["location"] == request_page  # fmt: skip
    download = post(legal, f"{request_page}/export", {"format": "json"})
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    assert email in download.text
    assert "completed" in legal.get(request_page).text or "完了" in legal.get(request_page).text

    erase = post(legal, "/admin/requests", {"kind": "erase", "by": "email", "value": email})
    erase_page = erase.headers["location"]
    subject = re.search(r'id="subject">([^<]+)<', legal.get(erase_page).text).group(1)  # type: ignore[union-attr]
    mistyped = post(legal, f"{erase_page}/erase", {"confirm": subject[:-1]})
    assert mistyped.status_code == 400
    assert legal.get("/admin/consent", params={"q": email}).status_code == 200  # still there
    assert post(legal, f"{erase_page}/erase", {"confirm": subject}).status_code == 303
    gone = legal.get("/admin/consent", params={"q": email})
    assert gone.status_code == 404
    user_id = user_of(dep, legal)
    audit = legal.get("/admin/audit", params={"actor": f"user:{user_id}"}).text
    for action in ("privacy.export.received", "privacy.export", "privacy.erase",
                   "console.consent.read", "console.signin"):  # fmt: skip
        assert f"<td>{action}</td>" in audit, action
    assert email not in audit  # ids only


def test_two_factor_is_required_for_admin_and_legal_when_set(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend="sqlite", ASHIATO_CONSOLE_REQUIRE_2FA="true")
    add_users(dep.env, ("boss@example.jp", "admin"), ("seller@example.jp", "marketing"))
    dep.server.start()
    try:
        admin = signed_in(dep.url, "boss@example.jp")
        assert admin.get("/admin/keys").headers["location"] == "/admin/account"
        page = admin.get("/admin/account").text
        secret = re.search(r'name="secret" value="([A-Z2-7]+)"', page).group(1)  # type: ignore[union-attr]
        code = pyotp.TOTP(secret).now()
        assert post(admin, "/admin/account", {"action": "totp", "secret": secret,
                                              "code": code}).status_code == 303  # fmt: skip
        assert admin.get("/admin/keys").status_code == 200
        assert signin(dep.url, "boss@example.jp")[1].status_code == 401  # no code
        with_code = signin(dep.url, "boss@example.jp", code=pyotp.TOTP(secret).now())[1]
        assert with_code.status_code == 303
        assert signed_in(dep.url, "seller@example.jp").get("/admin/").status_code == 200
    finally:
        dep.server.stop()


def test_user_commands(dep: Deployment) -> None:
    made = cli_json(dep.env, "user", "add", "new.hire@example.jp", "--role", "legal")
    assert made["role"] == "legal"
    assert len(made["password"]) >= 20
    listed = cli_json(dep.env, "user", "list")["users"]
    entry = next(u for u in listed if u["email"] == "new.hire@example.jp")
    assert set(entry) >= {"id", "role", "totp", "time_zone"}
    assert "password" not in entry
    client = signed_in(dep.url, "new.hire@example.jp", made["password"])
    reset = cli_json(dep.env, "user", "reset", "new.hire@example.jp")
    assert client.get("/admin/").status_code == 303  # a reset ends the sessions
    signed_in(dep.url, "new.hire@example.jp", reset["password"])
    run_cli(dep.env, "user", "disable", "new.hire@example.jp")
    assert signin(dep.url, "new.hire@example.jp", reset["password"])[1].status_code == 401
    again = run_cli(dep.env, "user", "add", "NEW.HIRE@example.jp", "--role", "admin", check=False)
    assert again.returncode == 2
    assert "exists" in again.stderr
    bad = run_cli(dep.env, "user", "add", "x@example.jp", "--role", "root", check=False)
    assert bad.returncode == 2


def test_admin_manages_users_keys_sites_and_webhooks(dep: Deployment) -> None:
    admin = signed_in(dep.url, "admin@example.jp")
    added = post(admin, "/admin/users", {"action": "add", "email": "temp@example.jp",
                                         "role": "legal"})  # fmt: skip
    password = re.search(r'id="one-time">([^<]+)<', added.text).group(1)  # type: ignore[union-attr]
    temp = signed_in(dep.url, "temp@example.jp", password)
    disabled = post(admin, "/admin/users", {"action": "disable", "user": user_of(dep, temp)})
    assert disabled.status_code == 200
    assert temp.get("/admin/").status_code == 303  # disabled: its session is over
    assert signin(dep.url, "temp@example.jp", password)[1].status_code == 401
    itself = post(admin, "/admin/users", {"action": "disable", "user": user_of(dep, admin)})
    assert itself.status_code == 400

    created = post(admin, "/admin/keys", {"name": "to revoke", "scope": "read"})
    key = re.search(r'id="new-key">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{dep.url}/api/v1/leads", headers=bearer).status_code == 200
    assert post(admin, f"/admin/keys/{key.split('_')[1]}/revoke", {}).status_code == 303
    assert httpx.get(f"{dep.url}/api/v1/leads", headers=bearer).status_code == 401

    new_site = post(admin, "/admin/sites", {"name": "edited", "origins": "https://e.example.test",
                                            "consent": "notice"})  # fmt: skip
    assert 'id="snippet"' in new_site.text
    site = site_named(dep, "edited")
    edited = post(admin, f"/admin/sites/{site.key}", {
        "origins": "https://shop.example.test\nHTTPS://Shop.Example.test:443/",
        "consent": "opt-in", "identify": "signed", "forms": "all"})  # fmt: skip
    assert edited.status_code == 303
    after = site_named(dep, "edited")
    assert after.origins == ("https://shop.example.test",)
    assert (after.consent_mode, after.settings.identify, after.settings.forms) == (
        "opt-in", "signed", "all")  # fmt: skip
    bad = {"origins": "ftp://nope", "consent": "notice", "identify": "any", "forms": "marked"}
    refused = post(admin, f"/admin/sites/{site.key}", bad)
    assert refused.status_code == 400
    assert site_named(dep, "edited").origins == after.origins

    made = post(admin, "/admin/webhooks", {"url": "http://127.0.0.1:9/hook"})
    hook_id = re.search(r"/admin/webhooks/(wh_[0-9a-f]+)", made.text).group(1)  # type: ignore[union-attr]
    assert post(admin, f"/admin/webhooks/{hook_id}/remove", {}).status_code == 303
    assert admin.get(f"/admin/webhooks/{hook_id}").status_code == 404


def test_a_removed_site_is_no_longer_collected(dep: Deployment) -> None:
    admin = signed_in(dep.url, "admin@example.jp")
    post(admin, "/admin/sites", {"name": "short-lived", "origins": "https://gone.example.test",
                                 "consent": "notice"})  # fmt: skip
    site = site_named(dep, "short-lived")
    beacon = dep.beacon(site=site.key)
    headers = {"Origin": "https://gone.example.test"}
    dropped = 'ashiato_events_dropped_total{reason="unknown_site"}'
    assert dep.post(beacon, **headers).status_code == 204
    before = metric(dep.url, dropped)
    assert post(admin, f"/admin/sites/{site.key}/remove", {"confirm": "short"}).status_code == 400
    assert not site_named(dep, "short-lived").settings.removed_at
    removal = post(admin, f"/admin/sites/{site.key}/remove", {"confirm": "short-lived"})
    assert removal.status_code == 303
    assert site_named(dep, "short-lived").settings.removed_at
    assert dep.post(dep.beacon(site=site.key), **headers).status_code == 204
    assert metric(dep.url, dropped) == before + 1
    assert 'id="removed"' in admin.get(f"/admin/sites/{site.key}").text
    edit = {"origins": "https://gone.example.test", "consent": "notice", "identify": "any",
            "forms": "marked"}  # fmt: skip
    assert post(admin, f"/admin/sites/{site.key}", edit).status_code == 400
