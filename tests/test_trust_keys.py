"""Trust in the keys (issue 10): a retire racing a server that has not re-read the key
file, a server started with another master key, and a cut audit log. Each runs on
SQLite and PostgreSQL (the key store is either)."""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from privacy.crypto.datakeys import DataKeys
from privacy.crypto.keyfile import KeyringSource, read_key_file, write_key_file
from privacy.crypto.keyring import Keyring
from privacy.keys import init_key_file, retire, rotate
from tests import postgres
from tests.conftest import Deployment, deployment_env
from tests.servers import Server, cli_json, run_cli
from tracker.settings import Settings
from tracker.storage.keystore import KeyStore, open_keystore
from tracker.wiring import open_parts


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def keystore(backend: str, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'keystore.db'}"
    else:
        url = postgres.create_database("ashiato_k")
    store = open_keystore(url)
    await store.migrate()
    yield store
    await store.close()


def source_of(key_file: Path) -> KeyringSource:
    return KeyringSource(read_key_file(key_file), path=key_file)


# -- rotate, then retire, while a server runs ------------------------------------------


@pytest.mark.anyio
async def test_a_key_made_before_the_server_rereads_the_file_survives_the_retire(
    keystore: KeyStore, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys" / "master.key"
    init_key_file(key_file)
    # The server's clock stands still: it re-reads the file at most every 5 s.
    server = DataKeys(source_of(key_file), keystore, now=lambda: 1000.0)
    before = await server.create()
    cli = source_of(key_file)
    old = cli.keyring.primary
    report = await rotate(cli, keystore, key_file)
    await retire(cli, keystore, key_file, old)
    after = await server.create()  # within the 5 s: the server still has the old file
    assert old not in read_key_file(key_file).keks
    reader = DataKeys(source_of(key_file), keystore)  # a process started after the retire
    for made in (before, after):
        assert (await reader.get(made.id)).key == made.key
    assert await keystore.count_by_kek() == {report.primary: 2}


def test_rotate_and_retire_under_a_running_server_lose_no_lead(
    fresh_deployment: Deployment,
) -> None:
    dep = fresh_deployment
    key = cli_json(dep.env, "apikey", "create", "ops", "--scope", "identify", "--scope", "read")
    auth = {"Authorization": f"Bearer {key['key']}"}
    dep.server.start()
    try:
        first = identify(dep, auth, "first@example.jp")  # the server reads the file now
        settings = Settings.from_env(dep.env)
        postgres.run(lambda: rotate_and_retire(settings))  # well within 5 s
        second = identify(dep, auth, "second@example.jp")
    finally:
        dep.server.stop()
    dep.server.start()  # a new process: only the key file as it is now
    try:
        for lead, email in ((first, "first@example.jp"), (second, "second@example.jp")):
            response = httpx.get(f"{dep.url}/api/v1/leads/{lead}", headers=auth)
            assert response.status_code == 200, response.text
            assert email in response.text
    finally:
        dep.server.stop()


async def rotate_and_retire(settings: Settings) -> None:
    keystore = open_keystore(settings.keystore_url)
    try:
        cli = source_of(Path(settings.master_key_file))
        old = cli.keyring.primary
        await rotate(cli, keystore, settings.master_key_file)
        await retire(cli, keystore, settings.master_key_file, old)
    finally:
        await keystore.close()


def identify(dep: Deployment, auth: dict[str, str], email: str) -> str:
    body = {"site": dep.site_key, "vid": secrets.token_hex(16), "traits": {"email": email}}
    response = httpx.post(f"{dep.url}/api/v1/identify", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["lead"])


@pytest.mark.anyio
async def test_retire_refuses_the_kek_an_interrupted_rotation_left_current(
    backend: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(deployment_env(tmp_path, backend))
    key_file = Path(settings.master_key_file)
    parts = await open_parts(settings)  # as a server starts
    try:
        old = parts.keyring.keyring.primary
        # `keys rotate` wrote the new KEK to the file and then crashed: no key was
        # re-wrapped yet, and running servers still wrap new keys by the old KEK.
        write_key_file(key_file, read_key_file(key_file).with_new_primary(), replace=True)
        with pytest.raises(Exception, match="rotate"):
            await retire(source_of(key_file), parts.keystore, key_file, old)
        made = await parts.keys.create()
        await rotate(source_of(key_file), parts.keystore, key_file)  # resumes
        await retire(source_of(key_file), parts.keystore, key_file, old)
        reader = DataKeys(source_of(key_file), parts.keystore)
        assert (await reader.get(made.id)).key == made.key
    finally:
        await parts.close()


# -- a wrong master key -----------------------------------------------------------------


def other_key_env(dep: Deployment) -> dict[str, str]:
    other = dep.tmp / "other-keys" / "master.key"
    if not other.exists():
        init_key_file(other)
    return dep.env | {"ASHIATO_MASTER_KEY_FILE": str(other)}


def test_a_server_with_another_master_key_refuses_to_start(fresh_deployment: Deployment) -> None:
    dep = fresh_deployment
    key = cli_json(dep.env, "apikey", "create", "ops", "--scope", "identify")
    dep.server.start()
    try:
        identify(dep, {"Authorization": f"Bearer {key['key']}"}, "known@example.jp")
    finally:
        dep.server.stop()
    wrong = Server(other_key_env(dep), dep.tmp / "wrong.log")
    try:
        with pytest.raises(AssertionError, match="server exited at start"):
            wrong.start()
    finally:
        if wrong.process is not None:
            wrong.stop()
    logs = wrong.logs()
    assert "wrong master key" in logs
    assert "ASHIATO_MASTER_KEY_FILE" in logs
    assert "Traceback" not in logs
    result = run_cli(other_key_env(dep), "audit", "verify", check=False)
    assert result.returncode == 1
    assert "wrong master key: ASHIATO_MASTER_KEY_FILE" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_fresh_deployment_with_another_master_key_is_refused_too(
    fresh_deployment: Deployment,
) -> None:
    # No data key yet (no lead, no secret): the key store still knows its master key.
    result = run_cli(other_key_env(fresh_deployment), "audit", "verify", check=False)
    assert result.returncode == 1
    assert "another master key" in result.stderr


def test_readyz_refuses_when_the_key_store_belongs_to_another_master_key(
    fresh_deployment: Deployment,
) -> None:
    dep = fresh_deployment
    dep.server.start()
    try:
        assert httpx.get(f"{dep.url}/readyz").status_code == 200
        # The key store is swapped for another deployment's under the running server.
        sql = "UPDATE keyring_state SET fingerprint = {} WHERE id = 1"
        if dep.backend == "postgresql":
            postgres.execute(dep.keystore_url, sql.format("'\\x00'::bytea"))
        else:
            with sqlite3.connect(dep.keystore_url.removeprefix("sqlite:///")) as db:
                db.execute(sql.format("x'00'"))
        response = httpx.get(f"{dep.url}/readyz")
        assert response.status_code == 503
        assert "ASHIATO_MASTER_KEY_FILE" in response.json()["keys"]
    finally:
        dep.server.stop()


@pytest.mark.anyio
async def test_a_running_server_keeps_its_key_when_the_file_is_replaced_by_another(
    backend: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(deployment_env(tmp_path, backend))
    parts = await open_parts(settings)
    try:
        loaded = parts.keyring.keyring
        write_key_file(settings.master_key_file, Keyring.generate(), replace=True)
        assert not parts.keyring.maybe_reload(1e12)
        assert parts.keyring.keyring == loaded
    finally:
        await parts.close()


# -- the audit log's head ---------------------------------------------------------------


def audited_deployment(dep: Deployment, reads: int) -> dict[str, str]:
    key = cli_json(dep.env, "apikey", "create", "reader", "--scope", "read")
    auth = {"Authorization": f"Bearer {key['key']}"}
    for n in range(reads):  # each API read of personal data is an audit row
        assert httpx.get(f"{dep.url}/api/v1/leads", params={"limit": n + 1},
                         headers=auth).status_code == 200  # fmt: skip
    return auth


def verify(dep: Deployment) -> tuple[int, dict[str, object]]:
    result = run_cli(dep.env, "audit", "verify", "--json", check=False)
    return result.returncode, json.loads(result.stdout)


def cut_audit_log(dep: Deployment, after: int) -> None:
    """Delete every audit row past ``after``, as the database's owner could."""
    if dep.backend == "postgresql":
        postgres.execute(dep.database_url, "ALTER TABLE audit_log DISABLE TRIGGER USER;"
                         f" DELETE FROM audit_log WHERE seq > {after};"
                         " ALTER TABLE audit_log ENABLE TRIGGER USER")  # fmt: skip
    else:
        with sqlite3.connect(dep.tmp / "ashiato.db") as db:
            db.execute("DROP TRIGGER audit_log_no_delete")
            db.execute(f"DELETE FROM audit_log WHERE seq > {after}")


def test_cutting_off_the_end_of_the_audit_log_is_detected(fresh_deployment: Deployment) -> None:
    dep = fresh_deployment
    dep.server.start()
    try:
        auth = audited_deployment(dep, 4)
    finally:
        dep.server.stop()
    code, ok = verify(dep)
    assert code == 0
    assert ok["intact"]
    assert ok.get("unanchored", 0) == 0
    rows = int(str(ok["rows"]))
    cut_audit_log(dep, rows - 2)
    code, cut = verify(dep)
    assert code == 1
    assert cut["broken_at"] == rows - 1
    assert "missing" in str(cut["reason"])
    # The log grows again past where it was: still not intact (the anchored row differs).
    dep.server.start()
    try:
        for _ in range(3):
            httpx.get(f"{dep.url}/api/v1/leads", headers=auth)
    finally:
        dep.server.stop()
    code, regrown = verify(dep)
    assert code == 1
    assert regrown["broken_at"] == rows
    # After a real restore of older data the operator records the loss and re-anchors.
    anchored = cli_json(dep.env, "audit", "reanchor", "--yes")
    assert anchored["anchor_was"] == rows
    code, after = verify(dep)
    assert code == 0
    assert after["intact"]


def test_a_crash_between_commit_and_anchor_is_no_false_alarm(
    fresh_deployment: Deployment,
) -> None:
    dep = fresh_deployment
    dep.server.start()
    try:
        audited_deployment(dep, 2)
    finally:
        dep.server.stop()
    _, before = verify(dep)
    # A crash after the row's commit, before its anchor: the key store as it was before.
    if dep.backend == "sqlite":
        keystore = Path(dep.keystore_url.removeprefix("sqlite:///"))
        shutil.copy(keystore, dep.tmp / "keystore.copy")
    else:
        sql = "CREATE TABLE anchor_copy AS TABLE audit_anchor"
        postgres.execute(dep.keystore_url, sql)
    dep.server.start()
    try:
        httpx.get(f"{dep.url}/api/v1/leads", headers=audited_deployment(dep, 0))
    finally:
        dep.server.stop()
    if dep.backend == "sqlite":
        shutil.copy(dep.tmp / "keystore.copy", keystore)
    else:
        postgres.execute(dep.keystore_url, "UPDATE audit_anchor a SET seq = c.seq, mac = c.mac"
                         " FROM anchor_copy c WHERE a.id = c.id")  # fmt: skip
    code, behind = verify(dep)
    assert code == 0
    assert behind["intact"]
    assert int(str(behind["rows"])) > int(str(before["rows"]))
    assert int(str(behind["unanchored"])) >= 1
    dep.server.start()  # anchors what the crash left unanchored
    dep.server.stop()
    code, healed = verify(dep)
    assert code == 0
    assert healed["unanchored"] == 0
