"""Soak: ten minutes of steady mixed load, RSS and p99 printed every minute.

    python bench/soak.py [--minutes 10] [--connections 8] [--json]

One collector on a fresh SQLite database, loaded by wrk with a mix of page views (90 %),
form identifications (5 %, each a new lead: a data key, sealed traits, a link) and API
reads (5 %, lookups by email). Each minute is one wrk run; after it the server's RSS is
read from /proc. The verdict compares the last minute with the end of the warm-up
(the first two minutes, while caches and pools fill): RSS growth and p99 drift.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector import _latency_ms, free_port, serve, stop  # noqa: E402
from bench.common import ORIGIN, bench_env, cli, new_site  # noqa: E402

LUA = r"""
local counter, prefix = 0, 0
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  prefix = math.random(0, 0x7fffffff)
end
local ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
local collect = {["Content-Type"] = "text/plain", ["Origin"] = "ORIGIN", ["User-Agent"] = ua}
local api = {["Authorization"] = "Bearer API_KEY"}
request = function()
  counter = counter + 1
  local vid = string.format("%08x%08x%016x", prefix, math.random(0, 0x7fffffff), counter)
  local kind = counter % 20
  if kind == 0 then
    local n = math.random(1, 2000)
    return wrk.format("GET", "/api/v1/leads/lookup?email=soak" .. n .. "%40example.co.jp", api)
  end
  if kind == 1 then
    local body = '{"site":"SITE_KEY","type":"identify","vid":"' .. vid ..
      '","url":"ORIGIN/contact","traits":{"email":"new-' .. vid ..
      '@example.co.jp","name":"Soak Test","company":"Soak KK"},"form":"contact"}'
    return wrk.format("POST", "/collect", collect, body)
  end
  local body = '{"site":"SITE_KEY","type":"pageview","vid":"' .. vid ..
    '","url":"ORIGIN/page/' .. (counter % 50) .. '","title":"Soak","ts":1,"sent":2}'
  return wrk.format("POST", "/collect", collect, body)
end
"""


def seed(port: int, site_key: str, leads: int = 2000) -> None:
    """The leads the API lookups ask for (soak1…soak2000), so every lookup finds one."""
    import httpx

    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for start in range(1, leads + 1, 50):
            events = [
                {
                    "site": site_key,
                    "type": "identify",
                    "vid": f"{n:032x}",
                    "url": f"{ORIGIN}/contact",
                    "traits": {"email": f"soak{n}@example.co.jp"},
                }
                for n in range(start, min(start + 50, leads + 1))
            ]
            client.post(
                "/collect",
                content=json.dumps({"events": events}),
                headers={"Origin": ORIGIN, "User-Agent": ua},
            ).raise_for_status()


def rss_parts_mib(pid: int) -> tuple[float, float]:
    """(RssAnon, RssFile + RssShmem): the heap, and mapped files such as SQLite's -shm."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {k: int(v) for k, v in re.findall(r"(Rss\w+):\s+(\d+) kB", status)}
    return kb.get("RssAnon", 0) / 1024, (kb.get("RssFile", 0) + kb.get("RssShmem", 0)) / 1024


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def minute(url: str, script: Path, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            "-d60s",
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
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": _latency_ms(out, "50%"),
        "p99_ms": _latency_ms(out, "99%"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ashiato-soak-") as tmp:
        env = bench_env(Path(tmp))
        site = new_site(env, "soak")
        key = cli(env, "apikey", "create", "soak", "--scope", "read")["key"]
        script = Path(tmp) / "soak.lua"
        script.write_text(
            LUA.replace("ORIGIN", ORIGIN)
            .replace("SITE_KEY", site["site_key"])
            .replace("API_KEY", key)
        )
        port = free_port()
        server = serve([sys.executable, "-m", "tracker", "serve", "--port", str(port)], env, port)
        seed(port, site["site_key"])
        try:
            print(
                f"soak: {args.minutes} min, wrk -c{args.connections}, 90% page views, "
                "5% identify, 5% API lookups",
                flush=True,
            )
            started = time.monotonic()
            for n in range(1, args.minutes + 1):
                row = minute(f"http://127.0.0.1:{port}/", script, args.connections)
                anon, mapped = rss_parts_mib(server.pid)
                row |= {"minute": n, "rss_mib": rss_mib(server.pid), "anon_mib": anon,
                        "mapped_mib": mapped}  # fmt: skip
                rows.append(row)
                print(
                    f"minute {n:2d}: {row['rps']:7.0f} req/s  p50 {row['p50_ms']:6.2f} ms  "
                    f"p99 {row['p99_ms']:6.2f} ms  RSS {row['rss_mib']:6.1f} MiB "
                    f"(anon {row['anon_mib']:.1f}, mapped {row['mapped_mib']:.1f})  "
                    f"non-2xx {row['non_2xx']}",
                    flush=True,
                )
            elapsed = time.monotonic() - started
        finally:
            stop(server)
    warm = rows[min(1, len(rows) - 1)]
    last = rows[-1]
    growth = (last["rss_mib"] - warm["rss_mib"]) / warm["rss_mib"]
    p99s = [r["p99_ms"] for r in rows[2:]] or [last["p99_ms"]]
    print(
        f"\nafter warm-up (minute {warm['minute']}): RSS {warm['rss_mib']:.1f} -> "
        f"{last['rss_mib']:.1f} MiB ({growth:+.1%}); p99 over minutes 3-{last['minute']}: "
        f"min {min(p99s):.2f} ms, max {max(p99s):.2f} ms; {elapsed / 60:.1f} min in all"
    )
    if args.json:
        print(json.dumps({"minutes": rows, "rss_growth": growth}))
    return 0 if growth < 0.05 and sum(r["non_2xx"] for r in rows) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
