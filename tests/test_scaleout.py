"""Several collectors on one PostgreSQL: two `ashiato serve` instances on their own ports,
one of them with two worker processes, sharing the data and key store databases.

Identification must not depend on which collector (or which worker) a beacon reaches:
two collectors that see the same email at the same moment make one lead, not two leads
merged later, and every event answered by any of them is stored exactly once.
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SITE_ORIGIN, deployment_env
from tests.servers import CHROME_UA, Server, all_events, cli_json, with_store

ROUNDS = 40  # emails, each identified on both collectors at once


@dataclass
class Shared:
    collectors: list[Server]
    env: dict[str, str]
    site_key: str
    api_key: str

    def api(self, path: str, **params: str) -> Any:
        answer = httpx.get(
            f"{self.collectors[0].url}/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    tmp = tmp_path_factory.mktemp("scaleout")
    # One client address sends everything here: no per-address limit in the way.
    env = deployment_env(tmp, "postgresql", ASHIATO_RATE_LIMIT_IP="0")
    site = cli_json(env, "site", "add", "shop", "--origin", SITE_ORIGIN, "--consent", "notice")
    key = cli_json(env, "apikey", "create", "sales", "--scope", "read")["key"]
    collectors = [
        Server(env, tmp / "a.log", args=("--workers", "2")),
        Server(env, tmp / "b.log"),
    ]
    for server in collectors:
        server.start()
    yield Shared(collectors, env, site["site_key"], key)
    for server in collectors:
        assert server.stop() in {0, -signal.SIGTERM}  # uvicorn re-raises the signal it handled
        assert "Traceback" not in server.logs(), server.logs()


def beacon(shared: Shared, vid: str, **fields: Any) -> bytes:
    body = {"site": shared.site_key, "type": "pageview", "vid": vid,
            "url": f"{SITE_ORIGIN}/pricing"} | fields  # fmt: skip
    return httpx.Request("POST", "/", json=body).content


def post(server: Server, body: bytes) -> int:
    headers = {"Origin": SITE_ORIGIN, "User-Agent": CHROME_UA, "Content-Type": "text/plain"}
    return httpx.post(f"{server.url}/collect", content=body, headers=headers).status_code


def at_once(calls: list[Callable[[], int]]) -> list[int]:
    """Run the calls on their own threads, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], int]) -> int:
        barrier.wait(5)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(released, calls))


def test_two_collectors_identifying_one_email_at_once_make_one_lead(shared: Shared) -> None:
    a, b = shared.collectors
    for n in range(ROUNDS):
        email = f"race.{n}.{secrets.token_hex(3)}@example.jp"
        vids = [secrets.token_hex(16), secrets.token_hex(16)]
        # Each visitor has browsed before (on the other collector) ...
        assert post(b, beacon(shared, vids[0])) == 204
        assert post(a, beacon(shared, vids[1])) == 204
        # ... then both submit a form with the same email, on different collectors.
        identify = [beacon(shared, vid, type="identify", traits={"email": email}) for vid in vids]
        codes = at_once([lambda: post(a, identify[0]), lambda: post(b, identify[1])])  # noqa: B023
        assert codes == [204, 204]

        lead = shared.api("/leads/lookup", email=email)
        assert lead["merged_leads"] == [], "two leads were made, then merged"
        assert sorted(v["visitor"] for v in lead["visitors"]) == sorted(vids)
        timeline = shared.api(f"/leads/{lead['id']}/timeline")
        browsed = {i["visitor"] for i in timeline["items"] if i["kind"] == "event"}
        assert browsed == set(vids), "the earlier browsing of both visitors belongs to the lead"
    listed = shared.api("/leads", limit="500")["leads"]
    assert len(listed) == ROUNDS


def test_every_answered_event_is_stored_once_whichever_collector_took_it(
    shared: Shared,
) -> None:
    vid = secrets.token_hex(16)
    bodies = [beacon(shared, vid, url=f"{SITE_ORIGIN}/p/{n}") for n in range(120)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda nb: post(shared.collectors[nb[0] % 2], nb[1]),
                              enumerate(bodies)))  # fmt: skip
    assert codes == [204] * len(bodies)
    urls = [e.url for e in with_store(shared.env["ASHIATO_DATABASE_URL"], all_events)
            if e.vid == vid]  # fmt: skip
    assert sorted(urls) == sorted(f"{SITE_ORIGIN}/p/{n}" for n in range(120))


def test_workers_are_separate_processes(shared: Shared) -> None:
    """`--workers 2`: two server processes under one supervisor (uvicorn's), both
    answering (the tests above went through them)."""
    supervisor = shared.collectors[0].process
    assert supervisor is not None
    tasks = Path(f"/proc/{supervisor.pid}/task")
    children = [pid for task in tasks.iterdir() for pid in (task / "children").read_text().split()]
    # (multiprocessing's resource tracker is a child too)
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in children]
    workers = [c for c in commands if any(b"spawn_main" in part for part in c)]
    assert len(workers) == 2, commands
