"""Benchmark: retention over a large event log while ingest keeps being answered.

    python bench/retention.py [--events 1000000] [--connections 16] [--json]

Seeds a fresh SQLite database with N synthetic page views (half of them 14 months
old, half from last week), starts the collector, drives beacon load with wrk, and runs
`ashiato retention run` meanwhile. Prints what retention deleted (and checks it is
exactly the expired half), how long it took, and the ingest figures during the run:
requests/s, p50/p99 latency, non-2xx answers. A baseline without retention running is
measured first, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector import LUA, free_port, serve, stop  # noqa: E402
from bench.common import ORIGIN, bench_env, new_site  # noqa: E402
from privacy.consent import Rules  # noqa: E402
from privacy.retention import DAY_MS  # noqa: E402
from tracker.settings import Settings  # noqa: E402
from tracker.storage import open_store  # noqa: E402
from tracker.storage.records import Event  # noqa: E402


async def seed(settings: Settings, total: int) -> None:
    store = open_store(settings.database_url)
    site = (await store.list_sites())[0]
    rules = Rules({site.id: "notice"})
    now = int(time.time() * 1000)
    old, fresh = now - 425 * DAY_MS, now - 7 * DAY_MS
    batch: list[Event] = []
    for n in range(total):
        at = (old if n % 2 == 0 else fresh) + n
        batch.append(
            Event(
                site_id=site.id,
                type="pageview",
                vid=f"{n % 20_000:032x}",
                at=at,
                url=f"{ORIGIN}/page/{n % 1000}",
                browser="Chrome",
                os="Windows",
                device="desktop",
                ip="203.0.113.0",
            )
        )
        if len(batch) == 10_000:
            await store.write_batch(batch, rules)
            batch = []
            if n % 100_000 < 10_000:
                print(f"  seeded {n + 1:,} events", flush=True)
    await store.write_batch(batch, rules)
    await store.close()


def metric(url: str, name: str) -> int:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if not line.startswith("#") and line.rsplit(" ", 1)[0] == name:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def wait_for_metric(url: str, name: str, value: int, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while metric(url, name) < value:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} never reached {value}")
        time.sleep(0.05)


async def count_old(settings: Settings) -> int:
    """Events still older than the 13-month period (must be none)."""
    store = open_store(settings.database_url)
    try:
        site = (await store.list_sites())[0]
        return await store.count_events_before(site.id, int(time.time() * 1000) - 395 * DAY_MS)
    finally:
        await store.close()


def wrk(url: str, script: Path, connections: int, duration: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def figures(out: str) -> dict[str, float]:
    import re

    from bench.collector import _latency_ms

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _latency_ms(out, "50%"),
        "p99_ms": _latency_ms(out, "99%"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--baseline", type=int, default=10, help="seconds of ingest alone")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ashiato-bench-") as tmp:
        work = Path(tmp)
        env = bench_env(work)
        site = new_site(env, "bench")
        print(f"seeding {args.events:,} events (half expired) ...", flush=True)
        started = time.monotonic()
        asyncio.run(seed(Settings.from_env(env), args.events))
        print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
        script = work / "load.lua"
        script.write_text(LUA.replace("ORIGIN", ORIGIN).replace("SITE_KEY", site["site_key"]))
        port = free_port()
        # The server's own retention job, as in production: first run after the baseline.
        env["ASHIATO_RETENTION_INTERVAL_SECONDS"] = str(args.baseline + 5)
        server = serve([sys.executable, "-m", "tracker", "serve", "--port", str(port)], env, port)
        url = f"http://127.0.0.1:{port}"
        try:
            baseline = figures(
                wrk(url + "/", script, args.connections, args.baseline).communicate()[0]
            )
            wait_for_metric(url, "ashiato_retention_running", 1)
            load = wrk(url + "/", script, args.connections, 3600)
            started = time.monotonic()
            wait_for_metric(url, "ashiato_retention_runs_total", 1)
            seconds = time.monotonic() - started
            load.send_signal(signal.SIGINT)  # wrk stops and prints what it measured
            during = figures(load.communicate()[0])
            deleted = metric(url, 'ashiato_retention_deleted_total{class="events"}')
        finally:
            stop(server)
        left_old = asyncio.run(count_old(Settings.from_env(env)))
    expected = (args.events + 1) // 2
    exact = deleted == expected and left_old == 0
    print(
        f"\nretention deleted {deleted:,} events in {seconds:.1f} s "
        f"(expected exactly {expected:,}; none left expired: {'yes' if exact else 'NO'})"
    )
    for label, f in (("ingest alone", baseline), ("ingest during retention", during)):
        print(
            f"{label:26s} {f['rps']:8.0f} req/s  p50 {f['p50_ms']:6.2f} ms  "
            f"p99 {f['p99_ms']:6.2f} ms  non-2xx {f['non_2xx']}"
        )
    if args.json:
        print(
            json.dumps(
                {"deleted": deleted, "seconds": seconds, "baseline": baseline, "during": during}
            )
        )
    return 0 if exact and during["non_2xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
