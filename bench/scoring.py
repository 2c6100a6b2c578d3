"""Scoring's cost, for ``bench/collector.py --scoring`` and ``--rescore N``.

``--scoring``: the collector on fresh SQLite databases (four runs, alternated), under the same load in
which every ninth page view comes from one of 500 identified visitors (so those events
are scored for their lead right after their commit): once with no rules, once with the
20 rules below. Each run's requests/s is reported as a share of the floor's.

``--rescore N``: N events for N/100 identified leads are written straight through the
store, and ``ashiato scoring rescore``'s work (``scoring.rescoring.rescore``) replays
them all under the 20 rules: its wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ORIGIN, bench_env, cli, new_site

RULES_20 = (Path(__file__).parent / "scoring-rules.toml").read_text(encoding="utf-8")

KNOWN = 500
BROWSER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
           " Chrome/131.0.0.0 Safari/537.36")  # fmt: skip
PATHS = ["/", "/pricing", "/product/a?utm_source=news&utm_medium=email", "/blog/1", "/contact"]


VID_LINE = (
    '  local vid = string.format("%08x%08x%016x", prefix, math.random(0, 0x7fffffff), counter)\n'
)
KNOWN_LINE = "  if counter % 9 == 0 then vid = known[math.random(#known)] end\n"
"""Every ninth page view, from a known visitor picked at random (so each visits every
page of the load, not always the same one)."""


def known_lua(lua: str, vids: list[str]) -> str:
    """Every ninth page view from one of ``vids`` (identified visitors)."""
    assert VID_LINE in lua
    table = "local known = {" + ",".join(f'"{v}"' for v in vids) + "}\n"
    return table + lua.replace(VID_LINE, VID_LINE + KNOWN_LINE)


def identify_visitors(port: int, site_key: str, count: int) -> list[str]:
    vids = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(count):
            vid = secrets.token_hex(16)
            for beacon in (
                {"type": "pageview", "url": f"{ORIGIN}/pricing"},
                {"type": "identify", "name": "contact",
                 "traits": {"email": f"bench{i}@example.co.jp", "title": "部長"}},
            ):  # fmt: skip
                body = {"site": site_key, "vid": vid, **beacon}
                headers = {"Origin": ORIGIN, "User-Agent": BROWSER}  # not a bot
                answer = client.post("/collect", json=body, headers=headers)
                answer.raise_for_status()
            vids.append(vid)
    return vids


def ledger_entries(env: dict[str, str]) -> int:
    path = env["ASHIATO_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM score_ledger").fetchone()[0])


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_with_cpu(
    name: str, process: Any, port: int, script: Path, args: argparse.Namespace
) -> tuple[Any, float]:
    """The collector's figures, and its CPU milliseconds per 1,000 answered requests over
    the measured run plus a second after it (the scorer catching up): unlike requests/s,
    CPU per request hardly moves when other work shares the machine."""
    from bench.collector import Figures, peak_rss_mib, run_wrk

    url = f"http://127.0.0.1:{port}/"
    run_wrk(url, script, connections=args.connections, duration=args.warmup)
    time.sleep(1)
    before = cpu_seconds(process.pid)
    result = run_wrk(url, script, connections=args.connections, duration=args.duration)
    time.sleep(1)
    cpu = cpu_seconds(process.pid) - before
    answered = int(result["total"] - result["non2xx"])
    figures = Figures(name, result["rps"], result["p50"], result["p99"], answered,
                      int(result["non2xx"]), peak_rss_mib(process.pid))  # fmt: skip
    return figures, cpu * 1e6 / max(answered, 1)


def bench_with_rules(
    workdir: Path, lua: str, args: argparse.Namespace, *, rules: bool, run: int = 0
) -> tuple[Any, int, float]:
    """(figures, ledger entries written, CPU ms per 1,000 requests) of one run."""
    from bench.collector import free_port, serve, stop

    name = "collector, 20 rules" if rules else "collector, no rules"  # (11% known visitors)
    workdir = workdir / f"{'rules' if rules else 'no-rules'}-{run}"
    workdir.mkdir()
    env = bench_env(workdir)
    site = new_site(env, "bench")
    if rules:
        (workdir / "rules.toml").write_text(RULES_20, encoding="utf-8")
        cli(env, "scoring", "load", str(workdir / "rules.toml"), "--site", site["site_key"])
    port = free_port()
    process = serve([sys.executable, "-m", "tracker", "serve", "--port", str(port)], env, port)
    try:
        vids = identify_visitors(port, site["site_key"], KNOWN)
        script = workdir / "known.lua"
        script.write_text(known_lua(lua, vids).replace("SITE_KEY", site["site_key"]))
        figures, cpu = measure_with_cpu(name, process, port, script, args)
    finally:
        stop(process)
    return figures, ledger_entries(env), cpu


async def build_history(env: dict[str, str], site_key: str, events: int) -> int:
    """``events`` page views and events for ``events // 100`` identified leads."""
    from privacy import consent
    from tracker.settings import Settings
    from tracker.storage.records import Event
    from tracker.wiring import open_parts

    parts = await open_parts(Settings.from_env(env))
    try:
        site = next(s for s in await parts.store.list_sites() if s.key == site_key)
        rules, t0 = consent.Rules({site.id: site.consent_mode}), 1_764_547_200_000
        leads = max(1, events // 100)
        vids = [secrets.token_hex(16) for _ in range(leads)]
        for i, vid in enumerate(vids):
            traits = {"email": f"lead{i}@{'gmail.com' if i % 3 else 'example.co.jp'}"}
            await parts.identity.identify(site, vid, traits, evidence="api", at=t0)
        batch: list[Any] = []
        for n in range(events):
            vid, k = vids[n % leads], n // leads
            path = PATHS[k % len(PATHS)] if k % 7 else f"/pricing/{k % 5}"
            kind, name = ("event", "download") if k % 11 == 0 else ("pageview", None)
            batch.append(Event(site.id, kind, vid, t0 + k * 60_000 + n % leads,
                               url=f"{ORIGIN}{path}", name=name,
                               utm_medium="email" if k % 4 == 0 else None))  # fmt: skip
            if len(batch) == 5000:
                await parts.store.write_batch(batch, rules)
                batch = []
        if batch:
            await parts.store.write_batch(batch, rules)
        return leads
    finally:
        await parts.close()


def bench_rescore(workdir: Path, events: int) -> dict[str, float]:
    workdir = workdir / "rescore"
    workdir.mkdir()
    env = bench_env(workdir)
    site = new_site(env, "rescore")
    (workdir / "rules.toml").write_text(RULES_20, encoding="utf-8")
    cli(env, "scoring", "load", str(workdir / "rules.toml"), "--site", site["site_key"])
    started = time.perf_counter()
    leads = asyncio.run(build_history(env, site["site_key"], events))
    built = time.perf_counter() - started
    print(f"history: {events} events for {leads} leads written in {built:.1f} s", flush=True)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "tracker", "scoring", "rescore", "--json"],
                         env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    seconds = time.perf_counter() - started
    return {"events": events, "leads": leads, "seconds": seconds,
            "events_per_s": events / seconds, "entries": ledger_entries(env),
            "replayed": out.count('"leads"')}  # fmt: skip
