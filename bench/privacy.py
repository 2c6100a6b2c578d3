"""Benchmark: the cost of personal-data crypto and of reading a big lead.

    python bench/privacy.py [--json]

Prints, on a fresh SQLite database and key store:
* sealing and opening one lead record (email, name, company, phone, fields) under its
  data key, and computing a blind index — per operation, median of many;
* a blind-index lookup through the real server (`GET /api/v1/leads/lookup`);
* the timeline of a lead with 10,000 events through the real server
  (`GET /api/v1/leads/{id}/timeline`), median of several requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ORIGIN, bench_env, cli, new_site  # noqa: E402
from privacy.consent import Rules  # noqa: E402
from privacy.crypto.primitives import blind_index  # noqa: E402
from privacy.personal import Person  # noqa: E402
from tracker.settings import Settings  # noqa: E402
from tracker.storage.records import Event  # noqa: E402
from tracker.wiring import open_parts  # noqa: E402


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def timed(work: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await work()
        out.append(time.perf_counter() - started)
    return out


async def crypto_costs(settings: Settings) -> dict[str, float]:
    parts = await open_parts(settings)
    person = Person(
        "taro.yamada@example.co.jp",
        "山田 太郎",
        "Example 株式会社",
        "+81-3-1234-5678",
        {"department": "Marketing", "title": "Manager"},
    )
    lead = await parts.personal.new_lead(person, now=0)
    await parts.personal.read(lead)  # warm the data key cache, as a server has it

    async def seal() -> None:
        dk = await parts.keys.get(lead.key_id)
        parts.personal._seal(dk, lead.id, person)

    async def read() -> None:
        await parts.personal.read(lead)

    async def index() -> None:
        blind_index(parts.keyring.keyring.index_key, person.email)

    results = {
        "seal_lead_us": median_us(await timed(seal, 2000)),
        "open_lead_us": median_us(await timed(read, 2000)),
        "blind_index_us": median_us(await timed(index, 2000)),
    }
    await parts.close()
    return results


async def big_lead(settings: Settings, site_key: str, events: int) -> str:
    """A lead whose visitor has ``events`` page views, written straight to the store."""
    parts = await open_parts(settings)
    site = next(s for s in await parts.store.list_sites() if s.key == site_key)
    vid, now = secrets.token_hex(16), int(time.time() * 1000)
    batch = [
        Event(
            site_id=site.id,
            type="pageview",
            vid=vid,
            at=now - events + i,
            sid="s1",
            url=f"{ORIGIN}/page/{i}",
            title=f"Page {i}",
            browser="Chrome",
            os="Windows",
            device="desktop",
        )
        for i in range(events)
    ]
    for start in range(0, events, 2000):
        await parts.store.write_batch(batch[start : start + 2000], Rules({site.id: "notice"}))
    result = await parts.identity.identify(
        site, vid, {"email": "big@example.co.jp"}, evidence="api", at=now
    )
    await parts.close()
    return str(result.lead.id)  # type: ignore[union-attr]


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def http_median_ms(client: httpx.Client, url: str, params: dict[str, str], n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url, params=params)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(samples) * 1000


def export_median_ms(client: httpx.Client, lead_id: str, n: int) -> tuple[float, int]:
    """The full access bundle (every category, decrypted) of the big lead."""
    samples, events = [], 0
    for _ in range(n):
        started = time.perf_counter()
        response = client.post("/api/v1/privacy/export", json={"lead": lead_id})
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
        events = len(response.json()["events"])
    return statistics.median(samples) * 1000, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events of the big lead")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ashiato-bench-") as tmp:
        work = Path(tmp)
        env = bench_env(work)
        settings = Settings.from_env(env)
        site = new_site(env, "bench")
        key = cli(env, "apikey", "create", "bench", "--scope", "read", "--scope", "privacy")["key"]
        costs = asyncio.run(crypto_costs(settings))
        lead_id = asyncio.run(big_lead(settings, site["site_key"], args.events))
        port = 18000 + secrets.randbelow(20000)
        process = serve(env, port)
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=30,
                headers={"Authorization": f"Bearer {key}"},
            ) as client:
                timeline = client.get(f"/api/v1/leads/{lead_id}/timeline").json()
                events = sum(1 for item in timeline["items"] if item["kind"] == "event")
                timeline_ms = http_median_ms(client, f"/api/v1/leads/{lead_id}/timeline", {}, 7)
                export_ms, exported = export_median_ms(client, lead_id, 5)
                lookup_ms = http_median_ms(
                    client,
                    "/api/v1/leads/lookup",
                    {"email": "ＢＩＧ＠ＥＸＡＭＰＬＥ．ＣＯ．ＪＰ"},
                    50,
                )
        finally:
            process.terminate()
            process.wait(30)
    print(f"seal one lead record (5 fields):   {costs['seal_lead_us']:8.1f} µs")
    print(f"open one lead record (5 fields):   {costs['open_lead_us']:8.1f} µs")
    print(f"blind index of an email (HMAC):    {costs['blind_index_us']:8.1f} µs")
    print(f"lookup by email over HTTP:         {lookup_ms:8.2f} ms (median of 50)")
    print(f"timeline, {events} events over HTTP: {timeline_ms:8.1f} ms (median of 7)")
    print(f"export, {exported} events over HTTP:   {export_ms:8.1f} ms (median of 5)")
    if args.json:
        print(
            json.dumps(
                costs
                | {
                    "lookup_ms": lookup_ms,
                    "timeline_ms": timeline_ms,
                    "export_ms": export_ms,
                    "timeline_events": events,
                }
            )
        )
    return 0 if events >= args.events else 1


if __name__ == "__main__":
    sys.exit(main())
