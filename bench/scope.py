"""Benchmark: what a site limit costs an API read (tracker/scope.py).

    python bench/scope.py [--leads 2000] [--events 10000] [--json]

On a fresh SQLite database with two sites: ``--leads`` leads, half on each site (5 page
views each), and one big lead on both sites (``--events`` page views, half on each).
Through the real server, with an unlimited key and a key limited to the first site,
median of several requests each: the first page of ``GET /api/v1/leads`` (100 leads),
paging through every lead, the big lead's timeline and export, and a page of the change
feed (500 rows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ORIGIN, bench_env, cli, new_site  # noqa: E402
from bench.privacy import serve  # noqa: E402
from privacy.consent import Rules  # noqa: E402
from tracker.settings import Settings  # noqa: E402
from tracker.storage.records import Event, Site  # noqa: E402
from tracker.wiring import Parts, open_parts  # noqa: E402


def views(site: Site, vid: str, count: int, start: int) -> list[Event]:
    return [Event(site_id=site.id, type="pageview", vid=vid, at=start + i, sid="s1",
                  url=f"{ORIGIN}/p/{i}", title=f"Page {i}")
            for i in range(count)]  # fmt: skip


async def person(parts: Parts, site: Site, email: str, count: int, now: int) -> str:
    vid = secrets.token_hex(16)
    batch = views(site, vid, count, now - count)
    for start in range(0, count, 2000):
        await parts.store.write_batch(batch[start : start + 2000], Rules({site.id: "notice"}))
    result = await parts.identity.identify(site, vid, {"email": email}, evidence="api", at=now)
    return str(result.lead.id)  # type: ignore[union-attr]


async def populate(settings: Settings, keys: tuple[str, str], leads: int, events: int) -> str:
    parts = await open_parts(settings)
    sites = {s.key: s for s in await parts.store.list_sites()}
    a, b = sites[keys[0]], sites[keys[1]]
    now = int(time.time() * 1000)
    for n in range(leads):
        await person(parts, a if n % 2 else b, f"p{n}@example.co.jp", 5, now + n)
    big = await person(parts, b, "big@example.co.jp", events // 2, now)
    await person(parts, a, "big@example.co.jp", events // 2, now + events)
    await parts.close()
    return big


def median_ms(client: httpx.Client, method: str, path: str, n: int, **kwargs: Any) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        client.request(method, path, **kwargs).raise_for_status()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def every_lead_ms(client: httpx.Client) -> tuple[float, int]:
    started, cursor, seen = time.perf_counter(), None, 0
    while True:
        page = client.get("/api/v1/leads", params={"limit": 100} | (
            {"cursor": cursor} if cursor else {})).json()  # fmt: skip
        seen += len(page["leads"])
        cursor = page["next_cursor"]
        if not cursor:
            return (time.perf_counter() - started) * 1000, seen


def measure(client: httpx.Client, big: str) -> dict[str, float]:
    paged, seen = every_lead_ms(client)
    return {
        "first_page_ms": median_ms(client, "GET", "/api/v1/leads", 9, params={"limit": 100}),
        "every_lead_ms": paged,
        "leads_seen": seen,
        "timeline_ms": median_ms(client, "GET", f"/api/v1/leads/{big}/timeline", 5),
        "export_ms": median_ms(client, "POST", "/api/v1/privacy/export", 3, json={"lead": big}),
        "changes_ms": median_ms(client, "GET", "/api/v1/changes", 9, params={"limit": 500}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ashiato-bench-") as tmp:
        env = bench_env(Path(tmp))
        a, b = new_site(env, "client-a")["site_key"], new_site(env, "client-b")["site_key"]
        every = ["--scope", "read", "--scope", "privacy"]
        keys = {
            "unlimited": cli(env, "apikey", "create", "agency", *every)["key"],
            "limited": cli(env, "apikey", "create", "client", *every, "--site", a)["key"],
        }
        big = asyncio.run(populate(Settings.from_env(env), (a, b), args.leads, args.events))
        port = 18000 + secrets.randbelow(20000)
        process = serve(env, port)
        results = {}
        try:
            for name, key in keys.items():
                with httpx.Client(
                    base_url=f"http://127.0.0.1:{port}",
                    timeout=60,
                    headers={"Authorization": f"Bearer {key}"},
                ) as client:
                    results[name] = measure(client, big)
        finally:
            process.terminate()
            process.wait(30)
    print(f"{args.leads} leads on two sites, one of {args.events} events on both")
    for what in results["unlimited"]:
        print(f"{what:15} unlimited {results['unlimited'][what]:9.1f}"
              f"   limited {results['limited'][what]:9.1f}")  # fmt: skip
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
