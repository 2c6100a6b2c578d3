"""Where the collector's time per beacon goes, under the load of ``bench/collector.py``.

    python bench/profile.py [--duration 10] [--connections 64] [--rate 250] [--rollups false]
                            [--json]

Starts the collector on a fresh SQLite file, loads it with wrk exactly as
``bench/collector.py`` does, and samples every thread of the server with py-spy (a
development tool: ``pip install py-spy``; not a dependency of ashiato) while wrk runs.
Each sample is charged to the stage its innermost recognisable frame belongs to (HTTP
parsing and socket I/O, body read, JSON decode and validation, pipeline steps, user
agent, scrubbing, writer hand-off, SQLite insert, commit and fsync, response), and the
stages are printed as microseconds of thread time per answered beacon: samples / rate /
requests. The main thread and the SQLite writer thread both count, so the sum is more
than the wall time per beacon when the two overlap.
"""

from __future__ import annotations

import argparse
import collections
import json
import linecache
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector import LUA, free_port, run_wrk, serve, stop  # noqa: E402
from bench.common import ORIGIN, bench_env, new_site  # noqa: E402

IDLE = "idle threads (waiting for work)"

# (stage, test on "path:function" of a frame, or on its source line): first match wins,
# tried from the innermost frame outwards.
STAGES: list[tuple[str, str, str]] = [
    (IDLE, "line", "work_queue.get("),  # a thread pool's thread waiting for work
    (IDLE, "line", "tx.get()"),  # aiosqlite's reader thread waiting for work
    ("roll-ups catch-up", "frame", "tracker/storage/tables/rollups.py"),
    ("roll-ups catch-up", "frame", "tracker/storage/tables/tally.py"),
    ("roll-ups catch-up", "frame", "tracker/app.py:rollups_job"),
    ("commit + fsync", "line", "COMMIT"),
    ("SQLite insert", "frame", "tracker/storage/"),
    ("SQLite reads (roll-ups catch-up)", "frame", "aiosqlite/"),
    ("user agent", "frame", "tracker/useragent.py"),
    ("user agent", "frame", "ua_parser"),
    ("scrub", "frame", "tracker/scrub.py"),
    ("scrub", "frame", "privacy/redact.py"),
    ("writer hand-off", "frame", "tracker/writer.py"),
    ("writer hand-off", "frame", "concurrent/futures/"),
    ("writer hand-off", "frame", "asyncio/futures.py"),
    ("JSON decode + validation", "frame", "tracker/beacon.py"),
    ("JSON decode + validation", "frame", ":parse_body"),
    ("body read", "frame", ":read_body"),
    ("body read", "frame", ":check_body_headers"),
    ("response", "frame", ":_reply"),
    ("response", "frame", "tracker/http.py:BoundedHttpToolsProtocol._answer_raw"),
    ("response", "frame", "httptools_impl.py:RequestResponseCycle.send"),
    ("pipeline steps", "frame", "tracker/pipeline.py"),
    ("pipeline steps", "frame", "tracker/ingest.py"),
    ("pipeline steps", "frame", "tracker/ratelimit.py"),
    ("pipeline steps", "frame", "tracker/ordering.py"),
    ("pipeline steps", "frame", "tracker/cors.py"),
    ("pipeline steps", "frame", "privacy/"),
    ("pipeline steps", "frame", "scoring/"),
    ("collector routing", "frame", "tracker/collect.py"),
    ("collector routing", "frame", "tracker/app.py"),
    ("HTTP parse + socket I/O", "frame", "tracker/http.py"),
    ("HTTP parse + socket I/O", "frame", "uvicorn/"),
    ("HTTP parse + socket I/O", "frame", "asyncio/"),
]


def stage_of(frames: list[str]) -> str:
    """``frames`` as py-spy's raw format gives them: ``function (path:line)``, outermost
    first."""
    for frame in reversed(frames):
        function, _, where = frame.rpartition(" (")
        path, _, line = where.rstrip(")").rpartition(":")
        key = f"{path}:{function}"
        source = linecache.getline(path, int(line)) if line.isdigit() else ""
        for stage, kind, pattern in STAGES:
            if (kind == "line" and pattern in source) or (kind == "frame" and pattern in key):
                return stage
    return "other (interpreter)"


def profile(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="ashiato-profile-"))
    try:
        env = bench_env(work, ASHIATO_ROLLUPS=args.rollups)
        site = new_site(env, "bench")
        script = work / "collector.lua"
        script.write_text(LUA.replace("ORIGIN", ORIGIN).replace("SITE_KEY", site["site_key"]))
        port = free_port()
        server = serve([sys.executable, "-m", "tracker", "serve", "--port", str(port)], env, port)
        url = f"http://127.0.0.1:{port}/"
        try:
            run_wrk(url, script, connections=args.connections, duration=3)  # warm-up
            result: dict[str, float] = {}
            load = threading.Thread(target=lambda: result.update(run_wrk(
                url, script, connections=args.connections, duration=args.duration + 2)))  # fmt: skip
            load.start()
            raw = work / "profile.txt"
            subprocess.run(
                [args.py_spy, "record", "--pid", str(server.pid), "--duration",
                 str(args.duration), "--rate", str(args.rate), "--format", "raw",
                 "--output", str(raw), "--nonblocking"],
                check=True, capture_output=True,
            )  # fmt: skip
            load.join()
        finally:
            stop(server)
        samples: collections.Counter[str] = collections.Counter()
        for row in raw.read_text().splitlines():
            stack, _, count = row.rpartition(" ")
            samples[stage_of(stack.split(";"))] += int(count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Requests answered while py-spy sampled: the rate of the whole run times its duration.
    requests = result["rps"] * args.duration
    per_beacon = {s: n / args.rate / requests * 1e6 for s, n in samples.most_common() if s != IDLE}
    return {"requests_per_s": result["rps"], "p99_ms": result["p99"],
            "us_per_beacon": per_beacon, "samples": sum(samples.values())}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds sampled")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rollups", choices=("true", "false"), default="true",
                        help="ASHIATO_ROLLUPS of the collector profiled")  # fmt: skip
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    if not shutil.which(args.py_spy) and not Path(args.py_spy).exists():
        print("py-spy not found: pip install py-spy (a development tool)", file=sys.stderr)
        return 2
    figures = profile(args)
    print(f"collector: {figures['requests_per_s']:,.0f} req/s, p99 {figures['p99_ms']} ms; "
          f"{figures['samples']} samples")  # fmt: skip
    per_beacon: dict[str, float] = figures["us_per_beacon"]  # type: ignore[assignment]
    total = sum(per_beacon.values())
    for stage, us in per_beacon.items():
        print(f"  {stage:34} {us:7.1f} µs  {100 * us / total:5.1f} %")
    print(f"  {'thread time per beacon':34} {total:7.1f} µs")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
