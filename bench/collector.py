"""Benchmark: the collector against a bare-ASGI floor, measured in the same run.

    python bench/collector.py [--duration 10] [--connections 64] [--postgres [URL]] [--json]

Both servers run with the same uvicorn settings (httptools, uvloop, one worker) and take
the same load from wrk on loopback: page-view beacons from distinct visitors (a fresh
128-bit id per request) with 500 distinct user agents. For each it prints requests/s,
p50/p99 latency and the server's peak RSS; for the collector it also checks that every
answered event is in the database. Then the same load on ``ashiato serve --workers 2``
(two processes, one SQLite file), and the timeline and the export of a lead with 10,000
events over HTTP (``--lead-events``). Finally the ratio, and the tag's size.

With ``--postgres`` (an admin URL; default the local server) the same load then goes to
one collector on a fresh PostgreSQL database, and to two collectors (separate processes
on their own ports, each loaded by its own wrk with half the connections) sharing one;
each is reported with its ratio to the SQLite collector measured in the same run.

With ``--scoring`` the collector runs four times more (every ninth page view from one of 500
identified visitors), alternately without rules and with a 20-rule scoring set, each as
a share of the floor; with ``--rescore N`` N events are written and replayed under those rules
(``ashiato scoring rescore``), timed. See ``bench/scoring.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

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
from tracker.storage import open_store  # noqa: E402

LUA = r"""
local uas = {}
local families = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.%d.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Safari/605.1.15",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E%d Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel %d) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.%d.0 Mobile Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0",
}
for i = 1, 500 do
  uas[i] = string.format(families[(i % 5) + 1], 60 + (i % 70), i)
end
local paths = {"/", "/pricing", "/product/a?utm_source=news&utm_medium=email", "/blog/1", "/contact"}
local counter = 0
local prefix = 0
setup = function(thread) end
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  prefix = math.random(0, 0x7fffffff)
end
request = function()
  counter = counter + 1
  local vid = string.format("%08x%08x%016x", prefix, math.random(0, 0x7fffffff), counter)
  local body = '{"site":"SITE_KEY","type":"pageview","vid":"' .. vid ..
    '","sid":"0123456789abcdef","url":"ORIGIN' .. paths[(counter % 5) + 1] ..
    '","referrer":"https://www.google.com/","title":"Pricing","ts":1700000000000,"sent":1700000000050}'
  return wrk.format("POST", "/collect", {["Content-Type"] = "text/plain;charset=UTF-8",
    ["Origin"] = "ORIGIN", ["User-Agent"] = uas[(counter % 500) + 1]}, body)
end
"""


@dataclass
class Figures:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    answered_2xx: int
    non_2xx: int
    peak_rss_mib: float


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited during start (code {process.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} not ready in 30 s")


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def thread_cpu(pids: list[int]) -> dict[tuple[int, str], float]:
    """CPU seconds (user + system) so far of each thread of these processes."""
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended
                continue
            found[pid, task.name] = (int(fields[11]) + int(fields[12])) / tick
    return found


def server_pids(pid: int) -> list[int]:
    """``pid``, or with ``--workers`` its worker processes (uvicorn's supervisor serves
    nothing itself)."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return children or [pid]


def run_wrk(url: str, script: Path, *, connections: int, duration: float) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{round(duration)}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "total": total,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _latency_ms(out, "50%"),
        "p99": _latency_ms(out, "99%"),
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
    }


def _latency_ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def stored_events(database_url: str) -> int:
    async def count() -> int:
        store = open_store(database_url)
        try:
            return await store.count_events()
        finally:
            await store.close()

    return asyncio.run(count())


def serve(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_ready(f"http://127.0.0.1:{port}/healthz", process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def measure(
    name: str, process: subprocess.Popen[bytes], port: int, script: Path, args: argparse.Namespace
) -> Figures:
    url = f"http://127.0.0.1:{port}/"
    run_wrk(url, script, connections=args.connections, duration=args.warmup)
    result = run_wrk(url, script, connections=args.connections, duration=args.duration)
    answered = int(result["total"] - result["non2xx"])
    return Figures(
        name,
        result["rps"],
        result["p50"],
        result["p99"],
        answered,
        int(result["non2xx"]),
        peak_rss_mib(process.pid),
    )


def bench_floor(script: Path, args: argparse.Namespace) -> Figures:
    port = free_port()
    process = serve(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor:app",
            "--port",
            str(port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        dict(os.environ, PYTHONPATH=str(ROOT)),
        port,
    )
    try:
        return measure("bare ASGI floor", process, port, script, args)
    finally:
        stop(process)


def bench_collectors(
    name: str,
    env: dict[str, str],
    lua: str,
    workdir: Path,
    args: argparse.Namespace,
    *,
    count: int,
    workers: int = 1,
) -> tuple[Figures, dict]:
    """``count`` collectors sharing ``env``'s database, each loaded by its own wrk with
    ``connections / count`` connections at the same time; their sum (p99: the worst).
    With ``workers`` > 1 each is ``ashiato serve --workers N`` (peak RSS: the largest
    worker's)."""
    database_url = env["ASHIATO_DATABASE_URL"]
    site = new_site(env, "bench")
    script = workdir / f"collector-{count}-{workers}.lua"
    script.write_text(lua.replace("SITE_KEY", site["site_key"]))
    ports = [free_port() for _ in range(count)]
    command = [sys.executable, "-m", "tracker", "serve", "--workers", str(workers), "--port"]
    processes = [serve([*command, str(port)], env, port) for port in ports]
    connections = max(1, args.connections // count)

    def load(duration: float) -> list[dict[str, float]]:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda port: run_wrk(f"http://127.0.0.1:{port}/", script,
                                                      connections=connections,
                                                      duration=duration), ports))  # fmt: skip

    try:
        load(args.warmup)
        before = stored_events(database_url)
        pids = [pid for p in processes for pid in server_pids(p.pid)]
        cpu_before = thread_cpu(pids)
        results = load(args.duration)
        cpu = thread_cpu(pids)
        time.sleep(0.5)  # let requests still in flight when wrk stopped finish
        stored = stored_events(database_url) - before
        total = sum(int(r["total"]) for r in results)
        non2xx = sum(int(r["non2xx"]) for r in results)
        figures = Figures(
            name,
            sum(r["rps"] for r in results),
            max(r["p50"] for r in results),
            max(r["p99"] for r in results),
            total - non2xx,
            non2xx,
            max(peak_rss_mib(pid) for p in processes for pid in server_pids(p.pid)),
        )
    finally:
        for process in processes:
            stop(process)
    answered = figures.answered_2xx
    check = {
        "answered_2xx": answered,
        "stored": stored,
        # Requests in flight when the window opened or closed may be stored unanswered
        # (or answered after it): at most one per connection at each end.
        "every_answered_event_stored": answered <= stored <= answered + 2 * args.connections,
        # Each server thread's CPU time per answered request during the measurement, in
        # µs, largest first (the event loop, then the SQLite writer, ...).
        "thread_cpu_us": sorted(
            ((cpu[k] - cpu_before.get(k, 0.0)) * 1e6 / max(answered, 1) for k in cpu),
            reverse=True,
        ),
    }
    return figures, check


def bench_postgres(
    admin_url: str, workdir: Path, lua: str, args: argparse.Namespace, count: int
) -> tuple[Figures, dict]:
    data = postgres_database(admin_url, "ashiato_bench")
    keys = postgres_database(admin_url, "ashiato_bench_keys")
    try:
        workdir = workdir / f"postgresql-{count}"
        workdir.mkdir()
        env = bench_env(workdir, ASHIATO_DATABASE_URL=data, ASHIATO_KEYSTORE_URL=keys)
        name = "collector (PostgreSQL)" if count == 1 else f"{count} collectors (PostgreSQL)"
        return bench_collectors(name, env, lua, workdir, args, count=count)
    finally:
        drop_postgres_database(admin_url, data)
        drop_postgres_database(admin_url, keys)


def tag_size() -> dict[str, int]:
    tag = (ROOT / "tracker" / "static" / "t.js").read_bytes()
    return {"minified_bytes": len(tag), "gzipped_bytes": len(gzip.compress(tag, 9))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/postgres",
        metavar="ADMIN_URL",
        help="also measure PostgreSQL: one collector, and two sharing a database (fresh "
        "databases are created and dropped through ADMIN_URL; default: the local server)",
    )
    parser.add_argument("--scoring", action="store_true",
                        help="also measure ingest with and without 20 scoring rules")  # fmt: skip
    parser.add_argument("--rescore", type=int, default=0, metavar="N",
                        help="also time rescoring N events (e.g. 1000000)")  # fmt: skip
    parser.add_argument("--lead-events", type=int, default=10_000, metavar="N",
                        help="events of the lead whose timeline and export are timed")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: apt-get install wrk (or `make bench` as root)", file=sys.stderr
        )
        return 2
    lua = LUA.replace("ORIGIN", ORIGIN)
    with tempfile.TemporaryDirectory(prefix="ashiato-bench-") as tmp:
        workdir = Path(tmp)
        floor_script = workdir / "floor.lua"
        floor_script.write_text(lua.replace("SITE_KEY", "floor"))
        print(
            f"wrk -t1 -c{args.connections}, {args.duration:g} s per server after "
            f"{args.warmup:g} s warm-up, on {platform.node()} ({os.cpu_count()} cores)",
            flush=True,
        )
        floor = bench_floor(floor_script, args)
        report(floor)
        collector, check = bench_collectors(
            "collector (SQLite)", bench_env(workdir), lua, workdir, args, count=1
        )
        report(collector)
        checks = {"sqlite": check}
        two_workers, checks["sqlite-2-workers"] = bench_collectors(
            "collector (SQLite, --workers 2)", bench_env(workdir / "two-workers"), lua,
            workdir, args, count=1, workers=2,
        )  # fmt: skip
        report(two_workers)
        reads = lead_reads(workdir / "reads", args.lead_events)
        postgres: dict[str, Figures] = {}
        if args.postgres:
            for count in (1, 2):
                figures, checks[f"postgresql-{count}"] = bench_postgres(
                    args.postgres, workdir, lua, args, count
                )
                report(figures)
                postgres[f"postgresql-{count}"] = figures
        scoring = run_scoring(workdir, lua, args, floor)
    ratio = collector.requests_per_s / floor.requests_per_s
    size = tag_size()
    print(f"\ncollector / floor: {ratio:.1%} of the floor's requests/s")
    print(f"--workers 2 / one worker (SQLite): "
          f"{two_workers.requests_per_s / collector.requests_per_s:.1%}")  # fmt: skip
    print(f"lead with {reads['events']} events over HTTP: timeline {reads['timeline_ms']:.1f} ms "
          f"(median of 7), export {reads['export_ms']:.1f} ms (median of 5)")  # fmt: skip
    for figures in postgres.values():
        share = figures.requests_per_s / collector.requests_per_s
        print(f"{figures.name} / SQLite collector: {share:.1%}")
    for key, found in checks.items():
        print(
            f"{key}: answered 2xx: {found['answered_2xx']}, stored: {found['stored']} "
            f"-> every answered event stored: {found['every_answered_event_stored']}"
        )
    print(f"tag: {size['minified_bytes']} bytes minified, {size['gzipped_bytes']} bytes gzipped")
    if args.json:
        print(
            json.dumps(
                {
                    "floor": asdict(floor),
                    "collector": asdict(collector),
                    "ratio": ratio,
                    "two_workers": asdict(two_workers),
                    "lead_reads": reads,
                    "postgresql": {k: asdict(v) for k, v in postgres.items()},
                    "checks": checks,
                    "tag": size,
                    "scoring": scoring,
                }
            )
        )
    return 0 if all(c["every_answered_event_stored"] for c in checks.values()) else 1


def lead_reads(workdir: Path, events: int) -> dict[str, float]:
    """The timeline and the export of one lead with ``events`` events over HTTP, as
    ``bench/privacy.py`` measures them."""
    from bench.privacy import big_lead, export_median_ms, http_median_ms
    from bench.privacy import serve as serve_with_keys
    from tracker.settings import Settings

    workdir.mkdir()
    env = bench_env(workdir)
    site = new_site(env, "reads")
    key = cli(env, "apikey", "create", "reads", "--scope", "read", "--scope", "privacy")["key"]
    lead_id = asyncio.run(big_lead(Settings.from_env(env), site["site_key"], events))
    port = free_port()
    process = serve_with_keys(env, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as client:  # fmt: skip
            timeline_ms = http_median_ms(client, f"/api/v1/leads/{lead_id}/timeline", {}, 7)
            export_ms, exported = export_median_ms(client, lead_id, 5)
    finally:
        stop(process)
    return {"events": exported, "timeline_ms": timeline_ms, "export_ms": export_ms}


def run_scoring(
    workdir: Path, lua: str, args: argparse.Namespace, floor: Figures
) -> dict[str, object]:
    """``--scoring`` and ``--rescore N`` (``bench/scoring.py``), printed as they finish."""
    from bench.scoring import bench_rescore, bench_with_rules

    found: dict[str, object] = {}
    if args.scoring:  # alternated, twice each: other load on the machine hits both alike
        best: dict[bool, Figures] = {}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for rules in (False, True, False, True):
            figures, entries, cpu_ms = bench_with_rules(workdir, lua, args, rules=rules,
                                                        run=len(found))  # fmt: skip
            found[f"run{len(found)}"] = asdict(figures) | {"ledger_entries": entries,
                                                           "cpu_ms_per_1000": cpu_ms}  # fmt: skip
            report(figures)
            print(f"  {figures.requests_per_s / floor.requests_per_s:.1%} of the floor;"
                  f" CPU {cpu_ms:.0f} ms per 1,000 requests; ledger entries: {entries}",
                  flush=True)  # fmt: skip
            cpu[rules].append(cpu_ms)
            if rules not in best or figures.requests_per_s > best[rules].requests_per_s:
                best[rules] = figures
        without, with_rules = (best[False].requests_per_s / floor.requests_per_s,
                               best[True].requests_per_s / floor.requests_per_s)  # fmt: skip
        cpu_without, cpu_with = min(cpu[False]), min(cpu[True])
        found |= {"without_rules_share": without, "with_rules_share": with_rules,
                  "cpu_ms_per_1000_without": cpu_without, "cpu_ms_per_1000_with": cpu_with}  # fmt: skip
        print(f"scoring (best of two each): {without:.1%} of the floor without rules,"
              f" {with_rules:.1%} with 20 rules ({with_rules / without:.1%} of the rate);"
              f" CPU per 1,000 requests {cpu_without:.0f} ms without, {cpu_with:.0f} ms with"
              f" ({cpu_with / cpu_without - 1:+.1%})", flush=True)  # fmt: skip
    if args.rescore:
        rescored = bench_rescore(workdir, args.rescore)
        print(f"rescore: {rescored['events']:.0f} events ({rescored['leads']:.0f} leads) in"
              f" {rescored['seconds']:.1f} s ({rescored['events_per_s']:.0f} events/s),"
              f" {rescored['entries']:.0f} ledger entries", flush=True)  # fmt: skip
        found["rescore"] = rescored
    return found


def report(figures: Figures) -> None:
    print(
        f"{figures.name:30s} {figures.requests_per_s:9.0f} req/s  p50 {figures.p50_ms:6.2f} ms"
        f"  p99 {figures.p99_ms:6.2f} ms  peak RSS {figures.peak_rss_mib:6.1f} MiB"
        f"  (2xx {figures.answered_2xx}, other {figures.non_2xx})",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
