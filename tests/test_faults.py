"""Faults: a locked database, a full disk, a hanging webhook receiver, crashes mid-way.

Each must end in a clear 503 with Retry-After (never a crash or a 500), recovery by
itself once the fault clears, and nothing half-done.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import LOOPBACK_HOOKS, Deployment, make_deployment, write_locked
from tests.load import HEADERS
from tests.servers import cli_json, metric, run_cli, with_store
from tracker.settings import Settings
from tracker.wiring import open_parts

# Every test here runs once per backend, as the module builds deployments (the few that
# need no database included).
pytestmark = pytest.mark.usefixtures("backend")


def test_a_locked_database_answers_503_then_recovers(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend=backend)
    dep.server.start()
    assert dep.post(dep.beacon()).status_code == 204
    # The writer waits out SQLite's busy timeout (PostgreSQL's lock_timeout), 5 s, then
    # gives up.
    with write_locked(dep, "events"):
        locked = httpx.post(
            f"{dep.url}/collect", content=orjson.dumps(dep.beacon()), headers=HEADERS, timeout=30
        )
    assert locked.status_code == 503
    assert locked.headers["retry-after"] == "2"
    assert locked.json() == {"error": "database unavailable"}
    recovered = dep.beacon()
    assert dep.post(recovered).status_code == 204
    assert metric(dep.url, "ashiato_writer_commit_failures_total") >= 1
    dep.server.stop()
    assert with_store(dep.database_url, lambda s: s.visitor_events(recovered["vid"]))
    assert "Traceback" not in dep.server.logs()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs to put the database on (needs root, as CI has)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.sqlite_only(
    "puts the database file on a small tmpfs; PostgreSQL's live in its data directory"
)
def test_a_full_disk_answers_503_then_recovers(tmp_path: Path, small_disk: Path) -> None:
    from tests.servers import Server, base_env

    database_url = f"sqlite:///{small_disk / 'ashiato.db'}"
    env = base_env(database_url, keys_dir=tmp_path / "keys")
    site = cli_json(
        env, "site", "add", "shop", "--origin", "https://www.example.co.jp", "--consent", "notice"
    )
    dep = Deployment(
        Server(env, tmp_path / "server.log"), env, database_url, site["site_key"], tmp_path
    )
    dep.server.start()
    filler = small_disk / "filler"
    try:  # leave almost nothing free
        with filler.open("wb") as out:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
    except OSError:
        pass
    statuses = []
    for _ in range(40):
        batch = [dep.beacon(title="x" * 500) for _ in range(20)]
        statuses.append(dep.post({"events": batch}).status_code)
        if statuses[-1] == 503:
            break
    assert statuses[-1] == 503, statuses
    assert httpx.get(f"{dep.url}/healthz").status_code == 200  # no crash
    filler.unlink()
    recovered = dep.beacon()
    assert dep.post(recovered).status_code == 204
    assert with_store(database_url, lambda s: s.visitor_events(recovered["vid"]))
    dep.server.stop()
    assert "Traceback" not in dep.server.logs()


def test_a_hanging_webhook_receiver_does_not_slow_ingest(backend: str, tmp_path: Path) -> None:
    # A delivery may hang for 30 s; an ingest that waited on one would take that long.
    # The bound below is a third of it, so a loaded CI machine cannot fail the test.
    dep = make_deployment(
        tmp_path, backend=backend, ASHIATO_WEBHOOK_TIMEOUT_SECONDS="30", **LOOPBACK_HOOKS
    )
    key = cli_json(dep.env, "apikey", "create", "hooks", "--scope", "admin")["key"]
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(100)  # accepts connections, never answers
    port = hang.getsockname()[1]
    dep.server.start()
    created = httpx.post(
        f"{dep.url}/api/v1/webhooks",
        headers={"Authorization": f"Bearer {key}"},
        json={"url": f"http://127.0.0.1:{port}/hook"},
    )
    assert created.status_code == 201
    for n in range(10):  # each makes deliveries that will hang
        traits = {"email": f"hang{n}@example.jp"}
        assert dep.post(dep.beacon(type="identify", traits=traits)).status_code == 204
    slowest = 0.0
    for _ in range(100):
        started = time.perf_counter()
        assert dep.post(dep.beacon()).status_code == 204
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 10.0, f"an ingest request took {slowest:.2f} s"
    dep.server.stop()
    hang.close()


def test_an_interrupted_erasure_is_finished_at_the_next_start(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend=backend)
    dep.server.start()
    vid, email = secrets.token_hex(16), f"crash.{secrets.token_hex(3)}@example.jp"
    assert (
        dep.post(dep.beacon(vid=vid, url="https://www.example.co.jp/crash-page")).status_code == 204
    )
    assert (
        dep.post(dep.beacon(vid=vid, type="identify", traits={"email": email})).status_code == 204
    )
    dep.server.stop()

    async def crash_after_the_ledger() -> tuple[str, str]:
        # Step 1 of an erasure (the ledger entry), then the process "dies".
        parts = await open_parts(Settings.from_env(dep.env))
        subject = await parts.requests.find(email=email)
        lead = subject.leads[0]
        await parts.keystore.record_erasure(
            "pr_crashed",
            [lead.id],
            list(subject.whole_vids),
            [lead.key_id],
            int(time.time() * 1000),
        )
        await parts.close()
        return lead.id, lead.key_id

    lead_id, key_id = asyncio.run(crash_after_the_ledger())
    dep.server.start()
    assert "erasure ledger re-applied" in dep.server.logs()
    dep.server.stop()

    async def state() -> tuple[object, object, object, list[object]]:
        parts = await open_parts(Settings.from_env(dep.env))
        try:
            return (
                await parts.store.lead(lead_id),
                await parts.keystore.get(key_id),
                await parts.store.visitor_events(vid),
                await parts.keystore.ledger(),
            )
        finally:
            await parts.close()

    lead, key, events, ledger = asyncio.run(state())
    assert (lead, key, events) == (None, None, [])
    assert all(entry.done_at for entry in ledger)  # type: ignore[attr-defined]


def test_keys_rotate_while_the_server_runs(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend=backend)
    key = cli_json(dep.env, "apikey", "create", "rot", "--scope", "read")["key"]
    dep.server.start()
    emails = [f"rot{n}.{secrets.token_hex(2)}@example.jp" for n in range(30)]
    for email in emails:
        assert dep.post(dep.beacon(type="identify", traits={"email": email})).status_code == 204
    first = run_cli(dep.env, "keys", "rotate", "--batch", "7", "--json")
    assert '"generated":true' in first.stdout.replace(" ", "")
    rotated = cli_json(dep.env, "keys", "status")
    old = [k for k, n in rotated["keys_per_kek"].items() if k != rotated["primary"]]
    for kek in old:
        run_cli(dep.env, "keys", "retire", kek)
    # The reload interval (5 s) itself: after it the server's next use of the keys re-reads
    # the changed file. A reload answers no request and need not log, so there is
    # nothing to wait on; the time passing is what the test is about.
    time.sleep(5.5)
    auth = {"Authorization": f"Bearer {key}"}
    for email in emails:  # every lead still decrypts, the old KEK gone
        found = httpx.get(f"{dep.url}/api/v1/leads/lookup", params={"email": email}, headers=auth)
        assert found.status_code == 200, found.text
        assert found.json()["email"] == email
    assert os.stat(dep.env["ASHIATO_MASTER_KEY_FILE"]).st_mode & 0o077 == 0
    dep.server.stop()


def test_stalled_connections_do_not_starve_other_clients(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend=backend)
    dep.server.start()
    port = int(dep.url.rsplit(":", 1)[1])
    stalled = []
    for _ in range(200):  # a slowloris: many half-sent requests held open
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{")
        stalled.append(sock)
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(dep.post(dep.beacon()).status_code))
    thread.start()
    thread.join(10)
    assert results == [204]
    for sock in stalled:
        sock.close()
    dep.server.stop()
