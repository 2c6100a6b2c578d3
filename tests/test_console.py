"""The console over HTTP against a real server: roles enforced on every page and action,
form tokens, session lifetimes and fixation, throttling, re-authentication before
export and erasure, the audit trail of what a user saw and did, TOTP.
(SQLite only: the tables behind it run on both databases in test_console_storage.)"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.conftest import Deployment, make_deployment
from tests.console import (
    COOKIE,
    PASSWORD,
    add_user,
    add_users,
    age_session,
    console_deployment,
    csrf,
    post,
    session_of,
    signed_in,
    signin,
    stored,
    user_of,
)
from tracker.console.sessions import ABSOLUTE_MS, IDLE_MS, REAUTH_MS

LEGAL_PAGES = ("/admin/requests", "/admin/consent", "/admin/retention", "/admin/audit",
               "/admin/ledger")  # fmt: skip
ADMIN_PAGES = ("/admin/sites", "/admin/keys", "/admin/webhooks", "/admin/users")


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from console_deployment(tmp_path_factory.mktemp("console"))


def new_lead(dep: Deployment, email: str) -> str:
    """A visitor who browsed and sent a form; the visitor id."""
    vid = secrets.token_hex(16)
    assert dep.post(dep.beacon(vid=vid)).status_code == 204
    identify = dep.beacon(vid=vid, type="identify", form="contact",
                          traits={"email": email, "name": "Taro Yamada"})  # fmt: skip
    assert dep.post(identify).status_code == 204
    return vid


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
    assert post(legal, "/admin/consent", {"by": "email", "q": email}).status_code == 200
    assert post(legal, f"{erase_page}/erase", {"confirm": subject}).status_code == 303
    gone = post(legal, "/admin/consent", {"by": "email", "q": email})
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
