"""Real processes for tests: the `ashiato` CLI and a real `ashiato serve` on a free port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from privacy.keys import init_key_file
from tests.waiting import TimedOut, wait_until
from tracker.storage import Store, open_store
from tracker.storage.keystore import KeyStore, open_keystore
from tracker.storage.records import Event

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_script(script: str, *args: str) -> Iterator[int]:
    """Run ``script`` (Python source whose first argument is its port) as a server on a
    free loopback port; yield the port once it accepts, stop it when closed."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", script, str(port), *args])
    wait_until(lambda: _accepts(port), what="the server to start")
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def base_env(
    database_url: str,
    *,
    keys_dir: Path | None = None,
    keystore_url: str | None = None,
    create: bool = True,
    **extra: str,
) -> dict[str, str]:
    """Environment for a deployment whose database is ``database_url``; its keys (a key
    file and, unless ``keystore_url`` names one, a SQLite key store) go to a ``keys``
    folder beside a SQLite database (or ``keys_dir``), created on first use. With
    ``create`` the SQLite files are made (as ``ashiato migrate`` would), since other
    commands refuse a database file that does not exist."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHIATO_")}
    keys = keys_dir or Path(database_url.removeprefix("sqlite:///")).parent / "keys"
    key_file = keys / "master.key"
    if not key_file.exists():
        init_key_file(key_file)
    env |= {
        "ASHIATO_DATABASE_URL": database_url,
        "ASHIATO_ENV_FILE": "/nonexistent",
        "ASHIATO_MASTER_KEY_FILE": str(key_file),
        "ASHIATO_KEYSTORE_URL": keystore_url or f"sqlite:///{keys / 'keystore.db'}",
    }
    if create:
        create_sqlite_files(env["ASHIATO_DATABASE_URL"], env["ASHIATO_KEYSTORE_URL"])
    return env | extra


def create_sqlite_files(database_url: str, keystore_url: str) -> None:
    """Migrate whichever of the two is a SQLite file (PostgreSQL ones need no creating)."""
    databases: list[Store | KeyStore] = []
    if database_url.startswith("sqlite:///"):
        databases.append(open_store(database_url))
    if keystore_url.startswith("sqlite:///"):
        databases.append(open_keystore(keystore_url))

    async def run() -> None:
        for database in databases:
            try:
                await database.migrate()
            finally:
                await database.close()

    if databases:
        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may run a loop here
            pool.submit(asyncio.run, run()).result()


def run_cli(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ashiato {' '.join(args)} failed:\n{result.stderr}")
    return result


def cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(env, *args, "--json").stdout)


def with_store(database_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store the server uses (same URL), run ``work``, close it."""

    async def run() -> T:
        store = open_store(database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    # Its own thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


SERVER_LOGS: list[Path] = []
"""Every server log the suite wrote: checked for personal data when the session ends."""
# An email address anywhere, a traceback, or a query string in a logged path.
LEAKS = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|Traceback|\"path\": \"[^\"]*\?"
)


def leaks_in_logs(paths: list[Path]) -> list[str]:
    """``file:line: match`` for each leak in the given logs (the match is shown masked)."""
    found = []
    for path in dict.fromkeys(paths):
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for match in LEAKS.finditer(line):
                text = match.group(0)
                found.append(f"{path}:{number}: {text[:2]}…{text[-4:]} ({len(text)} chars)")
    return found


@dataclass
class Server:
    """`ashiato serve` in a subprocess; its stderr (JSON logs) goes to ``log_path``."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    args: tuple[str, ...] = ()  # more `ashiato serve` options, e.g. ("--workers", "2")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Server:
        SERVER_LOGS.append(self.log_path)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracker", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        try:
            wait_until(self._ready, what=f"{self.url}/readyz", timeout=timeout)
        except TimedOut:
            raise AssertionError(f"server not ready after {timeout}s:\n{self.logs()}") from None
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited at start:\n{self.logs()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def metric(base_url: str, name: str) -> float:
    """One sample from /metrics, e.g. ``metric(url, 'x_total{reason="bot"}')``; 0 if absent."""
    for line in httpx.get(f"{base_url}/metrics").text.splitlines():
        if not line.startswith("#") and line.rsplit(" ", 1)[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def all_events(store: Store) -> list[Event]:
    events: list[Event] = []
    while page := await store.events_page(after_id=events[-1].id or 0 if events else 0):
        events.extend(page)
    return events
