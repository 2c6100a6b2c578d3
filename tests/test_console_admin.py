"""The console's admin side over HTTP against a real server: users (CLI and pages),
API keys revoked at once, sites edited and removed, webhooks; SQLite only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Deployment
from tests.console import (
    console_deployment,
    post,
    signed_in,
    signin,
    site_named,
    user_of,
)
from tests.servers import cli_json, metric, run_cli


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from console_deployment(tmp_path_factory.mktemp("console-admin"))


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
