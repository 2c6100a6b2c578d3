"""Benchmark: the marketing dashboard and a lead's timeline on a big database.

    python bench/console.py [--events 10000000] [--leads N] [--postgres [URL]] [--ingest]

Writes ``--events`` page views over 90 days (sessions of 1-10 views from a pool of
visitors, 300 pages, referrers, UTM campaigns, devices) and ``--leads`` leads (default
one per 100 events) with links, touches and hot crossings straight into a fresh
database with bulk inserts (a fixture, not ingest), then counts them into the roll-ups
(``ashiato reports rebuild``'s work, timed). Then, median of 5 after one warm-up: the
30-day dashboard (``tracker.reports.Reports.dashboard``, in-process, Asia/Tokyo), the
same with a campaign filter (raw page views), and the timeline of a lead with 10,000
events over HTTP (``GET /api/v1/leads/{id}/timeline``).

``--ingest`` also measures ingest with roll-ups on and off (``ASHIATO_ROLLUPS``) against
the bare-ASGI floor with ``bench/collector.py``'s load, alternated (``--pairs``, 3); it prints
each share of the floor with the collector's CPU time per beacon by thread, the ratio of
the best runs, each pair's ratio and their median, and the median CPU per beacon.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    ORIGIN,
    bench_env,
    cli,
    drop_postgres_database,
    new_site,
    postgres_database,
)
from bench.privacy import big_lead, http_median_ms, serve  # noqa: E402
from tracker.reports import Filters, Reports  # noqa: E402
from tracker.settings import Settings  # noqa: E402
from tracker.storage import open_store  # noqa: E402
from tracker.storage.rows import EVENT_COLUMN_NAMES  # noqa: E402

DAY_MS = 86_400_000
CAMPAIGNS = ["spring", "webinar", "ebook", "brand", "retarget", "newsletter", "expo", "trial"]
REFERRERS = [None, None, "https://www.google.com/", "https://www.bing.com/",
             "https://t.co/x", "https://www.facebook.com/", "https://news.yahoo.co.jp/a"]  # fmt: skip
DEVICES = [("desktop", "Chrome", "Windows"), ("desktop", "Edge", "Windows"),
           ("desktop", "Safari", "macOS"), ("mobile", "Safari", "iOS"),
           ("mobile", "Chrome", "Android"), ("tablet", "Safari", "iPadOS")]  # fmt: skip


def page_views(
    site_id: int, events: int, now: int, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """``events`` page views in sessions over the last 90 days, oldest first per batch."""
    visitors = max(1, events // 8)
    pool = [f"{rng.getrandbits(128):032x}" for _ in range(visitors)]
    start, made = now - 90 * DAY_MS, 0
    step = 90 * DAY_MS / max(1, events)
    while made < events:
        vid = pool[int(visitors * rng.random() ** 2)]
        sid = f"{rng.getrandbits(64):016x}"
        at = int(start + made * step)
        utm = rng.choice(CAMPAIGNS) if rng.random() < 0.2 else None
        referrer = rng.choice(REFERRERS)
        device, browser, os_ = rng.choice(DEVICES)
        for n in range(min(rng.randint(1, 10), events - made)):
            path = f"/p/{int(300 * rng.random() ** 3)}"
            first = n == 0
            yield (site_id, "pageview", vid, sid, at + n * 30_000, ORIGIN + path,
                   referrer if first else ORIGIN + "/", f"Page {path}", None, None,
                   "mail" if utm and first else None, "email" if utm and first else None,
                   utm if first else None, None, None, None, browser, "1", os_, "1", device,
                   "192.0.2.0")  # fmt: skip
            made += 1


def leads(count: int, now: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for _ in range(count):
        created = now - rng.randrange(90 * DAY_MS)
        first, last = rng.choice(CAMPAIGNS), rng.choice(CAMPAIGNS)
        yield ("ld_" + secrets.token_hex(12), secrets.token_bytes(32), "k", b"sealed",
               orjson.dumps({"utm_campaign": first}).decode(),
               orjson.dumps({"utm_campaign": last}).decode(), created, created, first, last)  # fmt: skip


LEAD_COLUMNS = ("id", "email_index", "key_id", "email", "first_touch", "last_touch",
                "created_at", "updated_at", "first_campaign", "last_campaign")  # fmt: skip


def fill_sqlite(path: Path, site_id: int, args: argparse.Namespace, now: int) -> None:
    rng = random.Random(14)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    events_sql = (f"INSERT INTO events ({', '.join(EVENT_COLUMN_NAMES)}) VALUES "
                  f"({', '.join('?' * len(EVENT_COLUMN_NAMES))})")  # fmt: skip
    db.execute("BEGIN")
    db.executemany(events_sql, page_views(site_id, args.events, now, rng))
    made = list(leads(args.leads, now, rng))
    db.executemany(f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)})"
                   f" VALUES ({', '.join('?' * len(LEAD_COLUMNS))})", made)  # fmt: skip
    db.executemany(
        "INSERT INTO links (vid, lead_id, site_id, evidence, began_at, valid_from)"
        " VALUES (?, ?, ?, 'api', ?, 0)",
        ((secrets.token_hex(16), r[0], site_id, r[6]) for r in made),
    )
    db.executemany("INSERT INTO hot_crossings (lead_id, site_id, at) VALUES (?, ?, ?)",
                   ((r[0], site_id, r[6] + 3_600_000) for r in made[:: 20]))  # fmt: skip
    db.execute("UPDATE rollup_state SET tallied = 0 WHERE id = 1")
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()


async def fill_postgres(url: str, site_id: int, args: argparse.Namespace, now: int) -> None:
    import asyncpg

    rng = random.Random(14)
    conn = await asyncpg.connect(url)
    try:
        views = page_views(site_id, args.events, now, rng)
        while chunk := [row for _, row in zip(range(200_000), views, strict=False)]:
            await conn.copy_records_to_table("events", records=chunk, columns=EVENT_COLUMN_NAMES)
        made = list(leads(args.leads, now, rng))
        await conn.copy_records_to_table("leads", records=made, columns=LEAD_COLUMNS)
        await conn.copy_records_to_table(
            "links", columns=("vid", "lead_id", "site_id", "evidence", "began_at", "valid_from"),
            records=[(secrets.token_hex(16), r[0], site_id, "api", r[6], 0) for r in made],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "hot_crossings", columns=("lead_id", "site_id", "at"),
            records=[(r[0], site_id, r[6] + 3_600_000) for r in made[::20]],
        )  # fmt: skip
        await conn.execute("UPDATE rollup_state SET tallied = 0 WHERE id = 1")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def dashboards(settings: Settings, site_id: int, runs: int) -> dict[str, float]:
    store = open_store(settings.database_url)
    try:
        started = time.monotonic()
        await store.rebuild_rollups()
        rebuilt = time.monotonic() - started
        reports = Reports(store)
        end = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date()
        begin = end - dt.timedelta(days=29)
        figures = {"rebuild_s": rebuilt}
        for name, filters in (("dashboard_ms", Filters()),
                              ("filtered_ms", Filters(campaign="webinar"))):  # fmt: skip
            samples = []
            for _ in range(runs + 1):
                t = time.perf_counter()
                board = await reports.dashboard(site_id, begin, end, tz="Asia/Tokyo",
                                                filters=filters)  # fmt: skip
                samples.append(time.perf_counter() - t)
            figures[name] = statistics.median(samples[1:]) * 1000
            figures[name.replace("_ms", "_pageviews")] = board.totals.pageviews
        return figures
    finally:
        await store.close()


CONSOLE_USER = ("bench-marketing@example.jp", "bench console password 1")


def console_pages(base: str, site_key: str, lead_id: str, runs: int) -> dict[str, float]:
    """The console's pages as a marketing user sees them, over HTTP (rendered)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        form = client.get("/admin/signin").text
        token = form.split('name="token" value="', 1)[1].split('"', 1)[0]
        email, password = CONSOLE_USER
        client.post("/admin/signin", data={"token": token, "email": email,
                                           "password": password, "code": ""})  # fmt: skip
        figures = {}
        # The query goes as params: httpx replaces a URL's own query with ``params``
        # (an earlier version timed the default 7-day dashboard this way).
        for name, url, params in (
            ("console_dashboard_ms", "/admin/dashboard", {"range": "30d", "site": site_key}),
            ("console_lead_ms", f"/admin/leads/{lead_id}", {}),
            ("console_timeline_ms", f"/admin/leads/{lead_id}/timeline", {}),
        ):
            page = client.get(url, params=params)
            page.raise_for_status()
            figures[name] = http_median_ms(client, url, params, runs)
            if name == "console_dashboard_ms":  # the page's figure, to compare
                shown = page.text.split('id="total-pageviews">', 1)[1].split("<", 1)[0]
                figures["console_dashboard_pageviews"] = int(shown)
        return figures


def run(env: dict[str, str], args: argparse.Namespace, postgres: bool) -> dict[str, float]:
    settings = Settings.from_env(env)
    site = new_site(env, "bench")
    key = cli(env, "apikey", "create", "bench", "--scope", "read")["key"]
    now = int(time.time() * 1000)
    site_id = 1
    started = time.monotonic()
    if postgres:
        asyncio.run(fill_postgres(env["ASHIATO_DATABASE_URL"], site_id, args, now))
    else:
        fill_sqlite(Path(env["ASHIATO_DATABASE_URL"].removeprefix("sqlite:///")), site_id,
                    args, now)  # fmt: skip
    figures = {"fill_s": time.monotonic() - started}
    lead_id = asyncio.run(big_lead(settings, site["site_key"], args.timeline_events))
    figures |= asyncio.run(dashboards(settings, site_id, args.runs))
    subprocess.run([sys.executable, "-m", "tracker", "user", "add", CONSOLE_USER[0], "--role",
                    "marketing", "--password-stdin"], input=CONSOLE_USER[1] + "\n", env=env,
                   capture_output=True, text=True, check=True)  # fmt: skip
    port = 18000 + secrets.randbelow(20000)
    process = serve(env, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"Authorization": f"Bearer {key}"}) as client:  # fmt: skip
            url = f"/api/v1/leads/{lead_id}/timeline"
            client.get(url).raise_for_status()
            figures["timeline_ms"] = http_median_ms(client, url, {}, args.runs)
            end = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date()
            params = {"site": site["site_key"], "from": str(end - dt.timedelta(days=29)),
                      "to": str(end), "tz": "Asia/Tokyo"}  # fmt: skip
            client.get("/api/v1/reports/dashboard", params=params).raise_for_status()
            figures["http_dashboard_ms"] = http_median_ms(
                client, "/api/v1/reports/dashboard", params, args.runs
            )
        figures |= console_pages(f"http://127.0.0.1:{port}", site["site_key"], lead_id, args.runs)
    finally:
        process.terminate()
        process.wait(30)
    return figures


def report(name: str, f: dict[str, float], args: argparse.Namespace) -> None:
    print(
        f"{name}: {args.events:,} page views, {args.leads:,} leads written in"
        f" {f['fill_s']:.1f} s; roll-ups rebuilt in {f['rebuild_s']:.1f} s",
        flush=True,
    )
    print(f"  30-day dashboard over HTTP:        {f['http_dashboard_ms']:8.1f} ms"
          f"  (GET /api/v1/reports/dashboard, Asia/Tokyo; median of {args.runs})")  # fmt: skip
    print(
        f"  30-day dashboard in-process:      {f['dashboard_ms']:8.1f} ms"
        f"  ({f['dashboard_pageviews']:,} page views; median of {args.runs})"
    )
    print(
        f"  30-day dashboard, campaign filter: {f['filtered_ms']:8.1f} ms"
        f"  ({f['filtered_pageviews']:,} page views, from raw events)"
    )
    print(f"  lead timeline, {args.timeline_events:,} events over HTTP:"
          f" {f['timeline_ms']:8.1f} ms", flush=True)  # fmt: skip
    print(f"  console, 30-day dashboard page:    {f['console_dashboard_ms']:8.1f} ms"
          f"  ({f['console_dashboard_pageviews']:,} page views)")  # fmt: skip
    print(f"  console, lead page ({args.timeline_events:,} events):"
          f" {f['console_lead_ms']:8.1f} ms; its timeline page (the newest 1,000 lines):"
          f" {f['console_timeline_ms']:8.1f} ms", flush=True)  # fmt: skip


def ingest(args: argparse.Namespace, workdir: Path) -> None:
    """Roll-ups on vs off against the floor (bench/collector.py's load and servers)."""
    from bench.collector import LUA, bench_collectors, bench_floor
    from bench.collector import report as report_figures

    lua = LUA.replace("ORIGIN", ORIGIN)
    floor_script = workdir / "floor.lua"
    floor_script.write_text(lua.replace("SITE_KEY", "floor"))
    floor = bench_floor(floor_script, args)
    report_figures(floor)
    best: dict[str, float] = {}
    shares: dict[str, list[float]] = {"true": [], "false": []}
    cpu: dict[str, list[float]] = {"true": [], "false": []}
    for n, mode in enumerate(("true", "false") * args.pairs):
        where = workdir / f"ingest-{n}"
        where.mkdir()
        env = bench_env(where, ASHIATO_ROLLUPS=mode)
        figures, check = bench_collectors(f"collector, roll-ups {mode}", env, lua, where,
                                          args, count=1)  # fmt: skip
        report_figures(figures)
        share = figures.requests_per_s / floor.requests_per_s
        threads = [t for t in check["thread_cpu_us"] if t >= 0.5]
        print(f"  {share:.1%} of the floor; CPU per beacon {sum(threads):.1f} µs, by thread:"
              f" {', '.join(f'{t:.1f}' for t in threads)}", flush=True)  # fmt: skip
        cpu[mode].append(sum(threads))
        if mode == "true":
            counted, views = rollup_coverage(env["ASHIATO_DATABASE_URL"])
            print(f"  roll-ups after the stop: {counted:,} of {views:,} page views counted"
                  f" ({'exact' if counted == views else 'BEHIND'})", flush=True)  # fmt: skip
        best[mode] = max(best.get(mode, 0.0), share)
        shares[mode].append(share)
    print(
        f"ingest: roll-ups on {best['true']:.1%} of the floor, off {best['false']:.1%}:"
        f" on is {best['true'] / best['false']:.1%} of off (best of {args.pairs} each)"
    )
    # Each on run against the off run right after it: the machine's drift over the
    # whole measurement cancels within a pair (a best-of compares different moments).
    pairs = [on / off for on, off in zip(shares["true"], shares["false"], strict=True)]
    print(f"  on / off per pair: {', '.join(f'{r:.0%}' for r in pairs)};"
          f" median {statistics.median(pairs):.1%}")  # fmt: skip
    # CPU per beacon moves with this VM's speed less than throughput does.
    print(f"  CPU per beacon, median: on {statistics.median(cpu['true']):.1f} µs,"
          f" off {statistics.median(cpu['false']):.1f} µs")  # fmt: skip


def rollup_coverage(database_url: str) -> tuple[int, int]:
    """(page views the roll-ups count, page views stored): equal once caught up."""
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        counted = db.execute("SELECT COALESCE(SUM(pageviews), 0) FROM rollup_counts"
                             " WHERE dim = ''").fetchone()[0]  # fmt: skip
        views = db.execute("SELECT COUNT(*) FROM events WHERE type = 'pageview'").fetchone()[0]
    return int(counted), int(views)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--leads", type=int, default=None, help="default: events / 100")
    parser.add_argument("--timeline-events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", nargs="?", const="postgresql://postgres@127.0.0.1:5432/postgres",
                        metavar="ADMIN_URL", help="also on a fresh PostgreSQL database")  # fmt: skip
    parser.add_argument("--ingest", action="store_true", help="also roll-ups on vs off ingest")
    parser.add_argument("--duration", type=float, default=10.0, help="--ingest: s per run")
    parser.add_argument("--pairs", type=int, default=3, help="--ingest: on/off runs, alternated")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    args.leads = args.events // 100 if args.leads is None else args.leads
    with tempfile.TemporaryDirectory(prefix="ashiato-bench-") as tmp:
        work = Path(tmp)
        (work / "sqlite").mkdir()
        report("SQLite", run(bench_env(work / "sqlite"), args, False), args)
        if args.postgres:
            data = postgres_database(args.postgres, "ashiato_bench")
            keys = postgres_database(args.postgres, "ashiato_bench_keys")
            try:
                (work / "pg").mkdir()
                env = bench_env(work / "pg", ASHIATO_DATABASE_URL=data, ASHIATO_KEYSTORE_URL=keys)
                report("PostgreSQL", run(env, args, True), args)
            finally:
                drop_postgres_database(args.postgres, data)
                drop_postgres_database(args.postgres, keys)
        if args.ingest:
            ingest(args, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
