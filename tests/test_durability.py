"""No event answered 2xx is ever lost: SIGKILL under load, SIGTERM with a full queue."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from pathlib import Path

import httpx
import orjson

from tests.conftest import Deployment, make_deployment
from tests.load import HEADERS, load
from tests.servers import Server, all_events, metric, with_store
from tests.waiting import wait_until


def stored_vids(dep: Deployment) -> set[str]:
    return {e.vid for e in with_store(dep.database_url, all_events)}


def test_sigkill_under_load_loses_no_acknowledged_event(fresh_deployment: Deployment) -> None:
    dep = fresh_deployment
    acked: set[str] = set()
    for _round in range(3):
        dep.server.start()
        killed = threading.Event()
        before = len(acked)

        def kill_under_load(
            server: Server = dep.server, killed: threading.Event = killed, before: int = before
        ) -> None:
            try:  # once the load is well under way (twice what is asserted below)
                wait_until(lambda: len(acked) - before > 200, what="the load", timeout=30)
            finally:
                assert server.process is not None
                server.process.send_signal(signal.SIGKILL)
                server.process.wait()
                killed.set()

        threading.Thread(target=kill_under_load).start()
        asyncio.run(load(dep, workers=24, stop=killed.is_set, acked=acked))
        assert len(acked) - before > 100, "the load never got going"
        dep.server.process = None
    dep.server.start()  # recovery after the last kill: the WAL is replayed
    dep.server.stop()
    missing = acked - stored_vids(dep)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost"


def test_sigterm_flushes_queued_events_before_exit(backend: str, tmp_path: Path) -> None:
    # A long group-commit interval keeps accepted events waiting in the queue.
    dep = make_deployment(
        tmp_path, backend=backend, ASHIATO_WRITER_INTERVAL_MS="3000", ASHIATO_WRITER_BATCH="10000"
    )
    dep.server.start()
    beacons = [dep.beacon() for _ in range(40)]
    results: list[int] = []

    def send(beacon: dict) -> None:  # type: ignore[type-arg]
        response = httpx.post(
            f"{dep.url}/collect", content=orjson.dumps(beacon), headers=HEADERS, timeout=30
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=send, args=(b,)) for b in beacons]
    for thread in threads:
        thread.start()
    wait_until(
        lambda: metric(dep.url, "ashiato_writer_queue_depth") >= len(beacons),
        what="every event queued",
        timeout=5,
        interval=0.02,
    )
    assert with_store(dep.database_url, lambda s: s.count_events()) == 0
    # uvicorn shuts down gracefully, then re-raises the signal: exit status -SIGTERM.
    assert dep.server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    for thread in threads:
        thread.join()
    assert results == [204] * len(beacons)
    assert stored_vids(dep) == {b["vid"] for b in beacons}
    assert '"flushed_events"' in dep.server.logs()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (uvicorn's workers under its supervisor)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def test_two_sqlite_workers_lose_nothing_across_sigkill(tmp_path: Path) -> None:
    # Two server processes on one SQLite file (each its own writer; SQLite's lock takes
    # their commits in turn). The whole group is killed under load, as a power cut would.
    dep = make_deployment(tmp_path, backend="sqlite")
    dep.server.args = ("--workers", "2")
    acked: set[str] = set()
    dep.server.start()
    supervisor = dep.server.process
    assert supervisor is not None
    wait_until(lambda: len(descendants(supervisor.pid)) >= 2, what="two workers")
    workers = descendants(supervisor.pid)
    killed = threading.Event()

    def kill_under_load(server: Server = dep.server) -> None:
        try:
            wait_until(lambda: len(acked) > 400, what="the load", timeout=30)
        finally:
            assert server.process is not None
            for pid in [server.process.pid, *workers]:
                signal_quietly(pid, signal.SIGKILL)
            server.process.wait()
            killed.set()

    threading.Thread(target=kill_under_load).start()
    asyncio.run(load(dep, workers=24, stop=killed.is_set, acked=acked))
    assert len(acked) > 200, "the load never got going"
    dep.server.process = None
    dep.server.args = ()
    dep.server.start()  # recovery: the WAL is replayed
    dep.server.stop()
    missing = acked - stored_vids(dep)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost"


def signal_quietly(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # a worker may already be gone
        os.kill(pid, sig)
