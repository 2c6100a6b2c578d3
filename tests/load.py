"""A bounded beacon load on loopback, shared by durability and retention tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import orjson

from tests.conftest import SITE_ORIGIN, Deployment
from tests.servers import CHROME_UA

HEADERS = {"Origin": SITE_ORIGIN, "User-Agent": CHROME_UA, "Content-Type": "text/plain"}


async def load(
    dep: Deployment,
    *,
    workers: int,
    stop: Callable[[], bool],
    acked: set[str],
    statuses: list[int] | None = None,
) -> None:
    """Post batches of 1-3 events until ``stop()``; record every vid answered 2xx and,
    if asked, every status."""

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        i = 0
        while not stop():
            i += 1
            batch = [dep.beacon() for _ in range(1 + (n + i) % 3)]
            try:
                response = await client.post(
                    "/collect", headers=HEADERS, content=orjson.dumps({"events": batch})
                )
            except httpx.TransportError:  # the server is away (killed, restarting): retry
                await asyncio.sleep(0.01)  # a pause between tries, not a wait for anything
                continue
            if statuses is not None:
                statuses.append(response.status_code)
            if 200 <= response.status_code < 300:
                acked.update(e["vid"] for e in batch)

    limits = httpx.Limits(max_connections=workers)
    async with httpx.AsyncClient(base_url=dep.url, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client, n) for n in range(workers)))
