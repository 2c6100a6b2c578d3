"""Trust in the legal tools: exports go where they are told and nowhere else, an erasure
finds every export about the person, and the databases are private files that only
``migrate`` and ``serve`` create."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SITE_ORIGIN, Deployment, make_deployment
from tests.servers import base_env, cli_json, run_cli

# Every test here runs once per backend, as the module builds deployments (the few that
# need no database included).
pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def legal(backend: str, tmp_path: Path) -> Iterator[tuple[Deployment, dict[str, str]]]:
    dep = make_deployment(tmp_path, backend=backend, ASHIATO_EXPORT_DIR=str(tmp_path / "exports"))
    scopes = ("--scope", "read", "--scope", "privacy", "--scope", "admin")
    key = cli_json(dep.env, "apikey", "create", "legal", *scopes)["key"]
    dep.server.start()
    yield dep, {"Authorization": f"Bearer {key}"}
    if dep.server.process is not None:
        dep.server.stop()


def visit(dep: Deployment, vid: str, email: str | None = None) -> None:
    """A page view of ``vid``; with ``email``, then a form that identifies it."""
    assert dep.post(dep.beacon(vid=vid, url=f"{SITE_ORIGIN}/pricing")).status_code == 204
    if email is not None:
        form = dep.beacon(vid=vid, type="identify", form="contact", traits={"email": email})
        assert dep.post(form).status_code == 204


def lead_id(dep: Deployment, auth: dict[str, str], email: str) -> str:
    found = httpx.get(f"{dep.url}/api/v1/leads/lookup", params={"email": email}, headers=auth)
    assert found.status_code == 200, found.text
    return str(found.json()["id"])


def exported_files(dep: Deployment) -> set[str]:
    return {p.name for p in (dep.tmp / "exports").iterdir()}


def test_erasure_removes_exports_made_under_a_merged_lead_or_an_anonymous_visitor(
    legal: tuple[Deployment, dict[str, str]],
) -> None:
    dep, auth = legal
    tag = secrets.token_hex(4)
    laptop, phone = secrets.token_hex(16), secrets.token_hex(16)
    kept, merged = f"kept.{tag}@example.jp", f"merged.{tag}@example.jp"
    visit(dep, laptop)  # anonymous for now
    made = [cli_json(dep.env, "privacy", "export", "--visitor", laptop)["path"]]
    visit(dep, laptop, kept)
    visit(dep, phone, merged)
    made.append(cli_json(dep.env, "privacy", "export", "--email", merged)["path"])
    assert exported_files(dep) == {Path(p).name for p in made}  # control: two files
    into, other = lead_id(dep, auth, kept), lead_id(dep, auth, merged)
    merge = httpx.post(
        f"{dep.url}/api/v1/leads/{into}/merge",
        json={"other": other, "reason": "one person"},
        headers=auth,
    )
    assert merge.status_code == 201, merge.text

    erased = httpx.post(f"{dep.url}/api/v1/privacy/erase", json={"email": kept}, headers=auth)

    assert erased.status_code == 200, erased.text
    assert erased.json()["detail"]["leads"] == 2
    assert exported_files(dep) == set()
    assert erased.json()["status"] == "completed"


def test_export_to_a_file_is_private_whole_and_never_through_a_link(
    legal: tuple[Deployment, dict[str, str]],
) -> None:
    dep, _ = legal
    vid = secrets.token_hex(16)
    visit(dep, vid)
    out, victim, folder = dep.tmp / "out.json", dep.tmp / "victim.txt", dep.tmp / "folder"
    out.write_text("keep me")
    out.chmod(0o644)
    victim.write_text("not yours")
    (dep.tmp / "link.json").symlink_to(victim)
    folder.mkdir()

    refused = {
        "exists: pass --force": ["-o", str(out)],
        "symbolic link": ["-o", str(dep.tmp / "link.json"), "--force"],
        "is a directory": ["-o", str(folder)],
        "no such directory": ["-o", str(dep.tmp / "missing" / "x.json")],
    }
    for message, flags in refused.items():
        result = run_cli(dep.env, "privacy", "export", "--visitor", vid, *flags, check=False)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert (out.read_text(), victim.read_text(), list(folder.iterdir())) == (
        "keep me",
        "not yours",
        [],
    )

    fresh = dep.tmp / "fresh.json"
    run_cli(dep.env, "privacy", "export", "--visitor", vid, "-o", str(fresh))
    run_cli(dep.env, "privacy", "export", "--visitor", vid, "-o", str(out), "--force")
    for written in (fresh, out):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert json.loads(written.read_text())["subject"] == vid
    assert sorted(p.name for p in dep.tmp.iterdir() if p.name.endswith(".tmp")) == []
    statuses = [r["status"] for r in cli_json(dep.env, "privacy", "requests")["requests"]]
    assert statuses == ["completed", "completed"]  # the refused ones opened no request


def test_an_export_that_cannot_be_delivered_is_recorded_as_failed(
    legal: tuple[Deployment, dict[str, str]],
) -> None:
    dep, _ = legal
    vid = secrets.token_hex(16)
    visit(dep, vid)
    with open("/dev/full", "wb") as full:  # every write to it fails: no space left
        result = subprocess.run(
            [sys.executable, "-m", "tracker", "privacy", "export", "--visitor", vid, "-o", "-"],
            env=dep.env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "cannot write the export to standard output" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    requests = cli_json(dep.env, "privacy", "requests")["requests"]
    assert [(r["kind"], r["status"]) for r in requests] == [("export", "failed")]


@pytest.mark.sqlite_only("checks the modes of SQLite's own files")
def test_databases_and_their_wal_files_are_owner_only(
    legal: tuple[Deployment, dict[str, str]],
) -> None:
    dep, _ = legal
    visit(dep, secrets.token_hex(16), f"mode.{secrets.token_hex(4)}@example.jp")
    files = [
        path
        for base in (dep.tmp / "ashiato.db", dep.tmp / "keys" / "keystore.db")
        for path in (base, Path(f"{base}-wal"), Path(f"{base}-shm"))
    ]
    present = [p for p in files if p.exists()]
    assert dep.tmp / "ashiato.db-wal" in present  # control: the server has them open
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in present} == {
        p.name: 0o600 for p in present
    }


@pytest.mark.sqlite_only("a SQLite URL names a file; PostgreSQL databases are not created")
def test_only_migrate_creates_a_database_and_others_name_the_missing_one(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual one: files would be world-readable
    try:
        url = f"sqlite:///{tmp_path / 'data' / 'ashiato.db'}"
        env = base_env(url, keys_dir=tmp_path / "keys", create=False)
        typo = env | {"ASHIATO_DATABASE_URL": f"sqlite:///{tmp_path / 'dta' / 'ashiato.db'}"}
        for command in (["site", "list"], ["privacy", "requests"], ["keys", "status"]):
            result = run_cli(env, *command, check=False)
            assert result.returncode == 1, (command, result.stderr)
            assert "Traceback" not in result.stderr
        missing = run_cli(typo, "site", "list", check=False)
        assert missing.returncode == 1
        assert "ASHIATO_DATABASE_URL" in missing.stderr
        assert str(tmp_path / "dta" / "ashiato.db") in missing.stderr
        assert not (tmp_path / "data").exists()
        assert not (tmp_path / "dta").exists()

        run_cli(env, "migrate")
        assert run_cli(env, "site", "list").returncode == 0
        wrong_keys = env | {"ASHIATO_KEYSTORE_URL": f"sqlite:///{tmp_path / 'kes.db'}"}
        refused = run_cli(wrong_keys, "privacy", "requests", check=False)
        assert refused.returncode == 1
        assert "ASHIATO_KEYSTORE_URL" in refused.stderr
        assert "kes.db" in refused.stderr
        assert not (tmp_path / "kes.db").exists()
    finally:
        os.umask(old_umask)
    created = [tmp_path / "data" / "ashiato.db", tmp_path / "keys" / "keystore.db"]
    assert [stat.S_IMODE(p.stat().st_mode) for p in created] == [0o600, 0o600]
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
