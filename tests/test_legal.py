"""Legal operations end to end: export, erasure (and its ledger after a restore), audit."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from privacy.crypto.primitives import InvalidCiphertext
from privacy.export import SECTIONS
from tests import postgres
from tests.conftest import LOOPBACK_HOOKS, SITE_ORIGIN, Deployment, make_deployment
from tests.servers import cli_json, run_cli
from tracker.settings import Settings
from tracker.wiring import open_parts

EVENTS_PER_DEVICE = 5_000
FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def send_history(dep: Deployment, vid: str, url: str, count: int) -> None:
    with httpx.Client(base_url=dep.url, timeout=30) as client:
        for start in range(0, count, 50):
            batch = [
                dep.beacon(vid=vid, sid="s" * 16, url=f"{url}?n={n}", ts=n, sent=count)
                for n in range(start, min(start + 50, count))
            ]
            response = client.post(
                "/collect", content=orjson.dumps({"events": batch}), headers=_headers()
            )
            assert response.status_code == 204


def _headers() -> dict[str, str]:
    from tests.servers import CHROME_UA

    return {"Origin": SITE_ORIGIN, "User-Agent": CHROME_UA, "Content-Type": "text/plain"}


def byte_hits(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.name.endswith(".key") and "backup" not in path.parts:
            data = path.read_bytes()
            found += [(str(path.relative_to(root)), n) for n in needles if n.encode() in data]
    return found


@pytest.fixture
def legal(backend: str, tmp_path: Path) -> Iterator[tuple[Deployment, str]]:
    # One loopback client sends 10,000 events in seconds here: address limits off.
    dep = make_deployment(
        tmp_path,
        backend=backend,
        ASHIATO_EXPORT_DIR=str(tmp_path / "exports"),
        ASHIATO_ACCESS_LOG="true",
        ASHIATO_RATE_LIMIT_IP="0",
        ASHIATO_RATE_LIMIT_SITE="0",
        **LOOPBACK_HOOKS,
    )
    key = cli_json(
        dep.env,
        "apikey",
        "create",
        "legal",
        "--scope",
        "read",
        "--scope",
        "privacy",
        "--scope",
        "identify",
    )["key"]
    dep.server.start()
    yield dep, key
    if dep.server.process is not None:
        dep.server.stop()


def test_erasure_leaves_nothing_and_survives_a_restore(legal: tuple[Deployment, str]) -> None:
    dep, key = legal
    auth = {"Authorization": f"Bearer {key}"}
    tag = secrets.token_hex(5)
    email, name, company = f"erase.{tag}@example.jp", f"Erasename{tag}", f"Erasecorp{tag}"
    url = f"{SITE_ORIGIN}/canary-{tag}/private-page"
    laptop, phone = secrets.token_hex(16), secrets.token_hex(16)
    for vid in (laptop, phone):
        send_history(dep, vid, url, EVENTS_PER_DEVICE)
    typed = {laptop: email, phone: email.upper().translate(FULL_WIDTH)}
    for vid, address in typed.items():  # a form submission from each device
        beacon = dep.beacon(
            vid=vid,
            type="identify",
            url=f"{url}/contact",
            form="contact",
            traits={"email": address, "name": name, "company": company},
        )
        assert dep.post(beacon).status_code == 204
    lead = httpx.get(f"{dep.url}/api/v1/leads/lookup", params={"email": email}, headers=auth)
    assert lead.status_code == 200
    lead_id = lead.json()["id"]
    assert len(lead.json()["visitors"]) == 2
    run_cli(dep.env, "privacy", "export", "--email", email)  # leaves a file in exports/
    assert byte_hits(dep.tmp / "exports", [name]) != [], "control: the export holds the name"

    backup = dep.tmp / "backup"
    backup.mkdir()
    backup_url = take_backup(dep, backup)

    erased = httpx.post(f"{dep.url}/api/v1/privacy/erase", json={"email": email}, headers=auth)
    assert erased.status_code == 200, erased.text
    detail = erased.json()["detail"]
    assert (detail["leads"], detail["events"]) == (1, 2 * EVENTS_PER_DEVICE + 2)
    assert erased.json()["status"] == "completed"

    needles = [email, name, company, url, f"canary-{tag}"]
    assert byte_hits(dep.tmp, needles) == []  # database, -wal, -shm, keys, logs, exports
    assert postgres_hits(dep, needles) == []
    for path in (
        f"/api/v1/leads/{lead_id}",
        f"/api/v1/visitors/{laptop}",
        f"/api/v1/visitors/{phone}",
    ):
        assert httpx.get(dep.url + path, headers=auth).status_code == 404
    assert (
        httpx.get(
            f"{dep.url}/api/v1/leads/lookup", params={"email": email}, headers=auth
        ).status_code
        == 404
    )
    changes = httpx.get(f"{dep.url}/api/v1/changes", headers=auth).json()["changes"]
    assert [c["kind"] for c in changes if c["lead"] == lead_id] == ["erased"]

    # The copy taken before the erasure, opened with today's keys, cannot be read...
    settings = Settings.from_env(dep.env | {"ASHIATO_DATABASE_URL": backup_url})
    assert asyncio.run(read_lead_from(settings, email)) == "unreadable"
    # ...and once "restored", the ledger erases its rows again at start.
    dep.server.stop()
    restore(dep, backup_url)
    if dep.backend == "sqlite":
        assert url.encode() in (dep.tmp / "ashiato.db").read_bytes()
    else:
        assert postgres.table_hits([dep.database_url], [url]) != []
    dep.server.start()
    assert "erasure ledger re-applied" in dep.server.logs()
    assert (
        httpx.get(
            f"{dep.url}/api/v1/leads/lookup", params={"email": email}, headers=auth
        ).status_code
        == 404
    )
    dep.server.stop()
    assert byte_hits(dep.tmp, needles) == []
    assert postgres_hits(dep, needles) == []


def take_backup(dep: Deployment, folder: Path) -> str:
    """A consistent copy of the data, as a nightly backup takes it; its URL. SQLite: an
    online backup into ``folder``; PostgreSQL: a copy of the database made while the
    server is stopped (a cold backup: CREATE DATABASE … TEMPLATE wants it unused)."""
    if dep.backend == "sqlite":
        with (
            sqlite3.connect(dep.tmp / "ashiato.db") as live,
            sqlite3.connect(folder / "a.db") as copy,
        ):
            live.backup(copy)
        return f"sqlite:///{folder / 'a.db'}"
    dep.server.stop()
    url = postgres.copy_database(dep.database_url, "ashiato_b")
    dep.server.start()
    return url


def restore(dep: Deployment, backup_url: str) -> None:
    """Put the backup in place of the live data (the server is stopped)."""
    if dep.backend == "postgresql":
        postgres.replace_database(dep.database_url, backup_url)
        return
    for suffix in ("", "-wal", "-shm"):
        (dep.tmp / f"ashiato.db{suffix}").unlink(missing_ok=True)
    shutil.copy(backup_url.removeprefix("sqlite:///"), dep.tmp / "ashiato.db")


def postgres_hits(dep: Deployment, needles: list[str]) -> list[tuple[str, str]]:
    """PostgreSQL's side of ``byte_hits``: any needle in any table of the data or the key
    store; and personal data in the server's files. PostgreSQL does not zero deleted
    rows (they stay in free space and the WAL until overwritten), so the files are
    searched for what is only ever stored encrypted, not for the erased page URLs."""
    if dep.backend == "sqlite":
        return []
    personal = needles[:3]  # email, name, company
    files = postgres.files_of([dep.database_url, dep.keystore_url], dep.created)
    in_files = [
        (path.name, n) for path in files for n in personal if n.encode() in path.read_bytes()
    ]
    return postgres.table_hits([dep.database_url, dep.keystore_url], needles) + in_files


async def read_lead_from(settings: Settings, email: str) -> str:
    parts = await open_parts(settings)
    try:
        row = await parts.store.lead_by_index(parts.personal.email_index(email))
        assert row is not None, "the backup holds the lead's (encrypted) row"
        try:
            await parts.personal.read(row)
        except InvalidCiphertext:
            return "unreadable"
        return "readable"
    finally:
        await parts.close()


def test_export_holds_every_category_as_json_and_safe_csv(legal: tuple[Deployment, str]) -> None:
    dep, key = legal
    auth = {"Authorization": f"Bearer {key}"}
    vid, email = secrets.token_hex(16), f"export.{secrets.token_hex(4)}@example.jp"
    send_history(dep, vid, f"{SITE_ORIGIN}/exported", 120)
    consent = dep.beacon(vid=vid, type="consent", consent={"analytics": True, "marketing": True})
    assert dep.post(consent).status_code == 204
    beacon = dep.beacon(
        vid=vid,
        type="identify",
        form="f",
        traits={"email": email, "name": '=HYPERLINK("http://x")'},
    )
    assert dep.post(beacon).status_code == 204
    admin = {
        "Authorization": "Bearer "
        + cli_json(dep.env, "apikey", "create", "admin", "--scope", "admin")["key"]
    }
    hook = httpx.post(
        f"{dep.url}/api/v1/webhooks", headers=admin, json={"url": "http://127.0.0.1:9/never"}
    )
    assert hook.status_code == 201
    other = dep.beacon(type="identify", traits={"email": "other." + email})
    assert dep.post(other).status_code == 204
    leads = {
        address: httpx.get(
            f"{dep.url}/api/v1/leads/lookup", params={"email": address}, headers=auth
        ).json()["id"]
        for address in (email, "other." + email)
    }
    merged = httpx.post(
        f"{dep.url}/api/v1/leads/{leads[email]}/merge",
        headers=admin,
        json={"other": leads["other." + email], "reason": "same person"},
    )
    assert merged.status_code == 201

    # Scoring is profiling: the points a person earned are theirs to see. A manual entry
    # (rules that nothing here fires, then an adjustment) puts one in their ledger.
    rules = {"rule": [{"id": "webinar", "when": {"type": "event", "name": "webinar"}, "points": 5}]}
    put = httpx.put(f"{dep.url}/api/v1/scoring/rules", params={"site": dep.site_key},
                    json=rules, headers=admin)  # fmt: skip
    assert put.status_code == 200, put.text
    adjusted = httpx.post(f"{dep.url}/api/v1/leads/{leads[email]}/score", headers=admin,
                          json={"site": dep.site_key, "points": 20,
                                "reason": "met at the trade show"})  # fmt: skip
    assert adjusted.status_code == 201, adjusted.text

    bundle = httpx.post(f"{dep.url}/api/v1/privacy/export", json={"email": email}, headers=auth)
    assert bundle.status_code == 200
    data = bundle.json()
    for section in SECTIONS:
        assert data[section], section
    [entry] = data["score_ledger"]
    assert (entry["reason"], entry["points"], entry["site"]) == ("met at the trade show", 20,
                                                                 dep.site_key)  # fmt: skip
    assert data["leads"][0]["email"] == email
    assert len(data["events"]) == 122  # 120 page views and two form submissions
    assert len(data["leads"]) == 2  # the lead and the one merged into it
    assert data["links"][0]["ip"] == "127.0.0.1"  # the full address, decrypted for its owner
    status = httpx.get(
        f"{dep.url}/api/v1/privacy/requests/{bundle.headers['ashiato-request']}", headers=auth
    ).json()
    assert status["status"] == "completed"
    assert status["due_at"] - status["received_at"] >= 28 * 86_400_000

    text = httpx.post(
        f"{dep.url}/api/v1/privacy/export", headers=auth, json={"email": email, "format": "csv"}
    ).text
    assert "'=HYPERLINK" in text
    assert "\n=HYPERLINK" not in text
    assert ",=HYPERLINK" not in text


def test_audit_verify_detects_edit_delete_and_reorder(legal: tuple[Deployment, str]) -> None:
    dep, key = legal
    auth = {"Authorization": f"Bearer {key}"}
    for n in range(4):  # each API read of personal data is an audit row
        httpx.get(f"{dep.url}/api/v1/leads", params={"limit": n + 1}, headers=auth)
    dep.server.stop()
    ok = json.loads(run_cli(dep.env, "audit", "verify", "--json").stdout)
    assert ok["intact"]
    assert ok["rows"] >= 4
    db = dep.tmp / "ashiato.db"

    def tamper(sql: str) -> dict:  # type: ignore[type-arg]
        if dep.backend == "postgresql":  # as the owner could: triggers off, then edit
            postgres.execute(dep.database_url, "CREATE TABLE audit_pristine AS TABLE audit_log;"
                             " ALTER TABLE audit_log DISABLE TRIGGER USER; " + sql)  # fmt: skip
        else:
            shutil.copy(db, dep.tmp / "pristine.db")
            with sqlite3.connect(db) as conn:
                conn.execute("DROP TRIGGER audit_log_no_update")
                conn.execute("DROP TRIGGER audit_log_no_delete")
                conn.executescript(sql)
        result = run_cli(dep.env, "audit", "verify", "--json", check=False)
        if dep.backend == "postgresql":
            postgres.execute(dep.database_url, "DELETE FROM audit_log; INSERT INTO audit_log"
                             " TABLE audit_pristine; DROP TABLE audit_pristine;"
                             " ALTER TABLE audit_log ENABLE TRIGGER USER")  # fmt: skip
        else:
            shutil.copy(dep.tmp / "pristine.db", db)
        assert result.returncode == 1
        return dict(json.loads(result.stdout))

    edited = tamper("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2;")
    assert edited["broken_at"] == 2
    deleted = tamper("DELETE FROM audit_log WHERE seq = 3;")
    assert deleted["broken_at"] == 4
    reordered = tamper(
        "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3;"
        " UPDATE audit_log SET seq = 3 WHERE seq = -1;"
    )
    assert reordered["broken_at"] == 2
