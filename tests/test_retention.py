"""Retention deletes exactly what is past its period, while ingest keeps flowing."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from identity.service import Identity
from privacy.consent import Rules
from privacy.retention import DAY_MS
from tests.conftest import Deployment, make_deployment, write_locked
from tests.load import load
from tests.servers import all_events
from tests.waiting import wait_until
from tracker.settings import Settings
from tracker.storage.records import ConsentReceipt, Event
from tracker.wiring import open_parts

OLD, FRESH = 30_000, 30_000


async def seed(dep: Deployment, now: int) -> dict[str, str]:
    """OLD events 14 months back, FRESH ones from last week, an idle visitor with only a
    consent receipt, and a lead last active 26 months ago."""
    parts = await open_parts(Settings.from_env(dep.env))
    site = (await parts.store.list_sites())[0]
    rules = Rules({site.id: site.consent_mode})
    old_at, fresh_at = now - 425 * DAY_MS, now - 7 * DAY_MS
    batch: list[Event | ConsentReceipt] = []
    for n in range(OLD + FRESH):
        at = (old_at if n < OLD else fresh_at) + n
        batch.append(
            Event(
                site_id=site.id,
                type="pageview",
                vid=f"{n % 500:032x}",
                at=at,
                url=f"https://www.example.co.jp/{n}",
            )
        )
        if len(batch) == 5000:
            await parts.store.write_batch(batch, rules)
            batch = []
    idle = secrets.token_hex(16)
    await parts.store.write_batch(
        [ConsentReceipt(secrets.token_hex(16), site.id, idle, True, False, "v1", "banner", old_at)],
        rules,
    )
    sleeper = secrets.token_hex(16)
    ancient = now - 800 * DAY_MS
    await parts.store.write_batch(
        [
            Event(
                site_id=site.id,
                type="pageview",
                vid=sleeper,
                at=ancient,
                url="https://www.example.co.jp/",
            )
        ],
        rules,
    )
    # Identified back then: change times come from the identity service's clock.
    back_then = Identity(
        parts.store, parts.personal, site_secret=lambda site: None, now=lambda: ancient / 1000
    )
    result = await back_then.identify(
        site, sleeper, {"email": "sleeper@example.jp"}, evidence="api", at=ancient
    )
    await parts.close()
    return {"idle": idle, "sleeper_lead": result.lead.id}  # type: ignore[union-attr]


def test_retention_deletes_exactly_the_expired_while_ingest_continues(
    backend: str, tmp_path: Path
) -> None:
    # One loopback client plays many visitors here: address and site limits off.
    dep = make_deployment(
        tmp_path, backend=backend, ASHIATO_RATE_LIMIT_IP="0", ASHIATO_RATE_LIMIT_SITE="0"
    )
    now = int(time.time() * 1000)
    seeded = asyncio.run(seed(dep, now))
    dry = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tracker", "retention", "run", "--dry-run", "--json"],
            env=dep.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert dry["counts"]["events"] == OLD + 1  # + the sleeper's 26-month-old page view
    assert dry["counts"]["leads"] == 1

    dep.server.start()
    acked: set[str] = set()
    statuses: list[int] = []
    done = threading.Event()
    loader = threading.Thread(
        target=lambda: asyncio.run(
            load(dep, workers=8, stop=done.is_set, acked=acked, statuses=statuses)
        )
    )
    loader.start()
    wait_until(lambda: len(statuses) >= 20, what="the load under way")
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "retention", "run", "--json"],
        env=dep.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    answered = len(statuses)  # and ingest goes on after the run
    wait_until(lambda: len(statuses) >= answered + 20, what="the load after the run")
    done.set()
    loader.join()
    dep.server.stop()
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)["counts"]
    assert report["events"] == OLD + 1
    assert report["leads"] == 1
    assert report["visitors"] >= 1
    assert statuses, "the load ran"
    assert set(statuses) == {204}, "ingest answered every request during the run"

    from tests.servers import with_store

    left = with_store(dep.database_url, all_events)
    urls = {e.url for e in left}
    assert all(f"https://www.example.co.jp/{n}" in urls for n in range(OLD, OLD + FRESH))
    assert not any(f"https://www.example.co.jp/{n}" in urls for n in range(0, OLD, 997))
    assert acked <= {e.vid for e in left}, "every acknowledged event survived"
    lead = with_store(dep.database_url, lambda s: s.lead(seeded["sleeper_lead"]))
    assert lead is None
    receipts = with_store(dep.database_url, lambda s: s.consent_receipts_of([seeded["idle"]]))
    assert receipts  # proof outlives the visitor's 13 months...
    state = with_store(dep.database_url, lambda s: s.consent_state(1, seeded["idle"]))
    assert state is None  # ...but the idle visitor's state is gone


def test_a_purge_step_that_finds_the_database_busy_is_tried_again(tmp_path: Path) -> None:
    # SQLite only: its busy timeout (5 s) is the wait that ends; another session (here a
    # plain connection, as a busy collector would) holds the write lock for longer.
    dep = make_deployment(tmp_path, backend="sqlite")
    now = int(time.time() * 1000)

    async def run() -> tuple[dict[str, int], float, int]:
        parts = await open_parts(Settings.from_env(dep.env))
        try:
            site = (await parts.store.list_sites())[0]
            old = [Event(site_id=site.id, type="pageview", vid=f"{n:032x}",
                         at=now - 425 * DAY_MS + n, url=f"https://www.example.co.jp/{n}")
                   for n in range(300)]  # fmt: skip
            await parts.store.write_batch(old, Rules({site.id: site.consent_mode}))
            held = threading.Event()

            def hold() -> None:
                with write_locked(dep, "events"):
                    held.set()
                    time.sleep(6.5)

            holder = threading.Thread(target=hold)
            holder.start()
            held.wait(10)
            started = time.monotonic()
            report = await parts.retention.run()
            waited = time.monotonic() - started
            holder.join()
            return report.counts, waited, await parts.store.count_events()
        finally:
            await parts.close()

    counts, waited, left = asyncio.run(run())
    assert counts["events"] == 300  # every expired event, once the lock was let go
    assert left == 0
    assert waited > 6  # it did wait out the lock, past one busy timeout
