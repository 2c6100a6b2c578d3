"""Deployments for the tests, on each database backend.

Every test that uses a database runs once per backend: ``backend`` is one session
fixture parametrised ``sqlite`` / ``postgresql``. The deployment fixtures depend on it;
tests (and module fixtures) that call ``make_deployment`` themselves ask for it and pass
it on, so pytest builds module fixtures again for each backend, and groups the tests by
backend. PostgreSQL deployments get two fresh databases (data, key store), dropped
when their test module ends. When PostgreSQL is down its tests skip, or fail with CI=true.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import postgres
from tests.servers import CHROME_UA, SERVER_LOGS, Server, base_env, cli_json, leaks_in_logs

SITE_ORIGIN = "https://www.example.co.jp"
BACKENDS = ("sqlite", "postgresql")
LOOPBACK_HOOKS = {"ASHIATO_WEBHOOK_ALLOW_PRIVATE": "true", "ASHIATO_WEBHOOK_ALLOW_HTTP": "true"}
"""Deployment settings for tests whose webhook receivers listen on 127.0.0.1 over plain
http: refused by default (see tracker.webhook_targets), allowed by these settings."""


@dataclass
class Deployment:
    """A running server with one notice-mode site, and everything a test needs to poke it."""

    server: Server
    env: dict[str, str]
    database_url: str
    site_key: str
    tmp: Path
    created: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def backend(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite:") else "postgresql"

    @property
    def keystore_url(self) -> str:
        return self.env["ASHIATO_KEYSTORE_URL"]

    def beacon(self, **fields: Any) -> dict[str, Any]:
        """A valid page-view beacon for this site; ``fields`` override."""
        return {
            "site": self.site_key,
            "type": "pageview",
            "vid": secrets.token_hex(16),
            "sid": secrets.token_hex(8),
            "url": f"{SITE_ORIGIN}/pricing",
            "title": "Pricing",
            "ts": 1_700_000_000_000,
            "sent": 1_700_000_000_100,
        } | fields

    def post(self, body: Any, **headers: str) -> httpx.Response:
        default = {"Origin": SITE_ORIGIN, "User-Agent": CHROME_UA, "Content-Type": "text/plain"}
        content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        return httpx.post(f"{self.url}/collect", content=content, headers=default | headers)


@contextmanager
def write_locked(dep: Deployment, table: str) -> Iterator[None]:
    """Another session holds the write lock (SQLite) or ``table`` locked (PostgreSQL, as a
    long migration or a careless admin session would)."""
    if dep.backend == "postgresql":
        with postgres.holding(dep.database_url, f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"):
            yield
        return
    blocker = sqlite3.connect(dep.tmp / "ashiato.db", isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def deployment_env(tmp: Path, backend: str, **env_extra: str) -> dict[str, str]:
    """The environment of a new deployment on ``backend``. Keys (the key file; SQLite's
    key store) go under ``tmp``."""
    if backend == "sqlite":
        return base_env(f"sqlite:///{tmp / 'ashiato.db'}", **env_extra)
    postgres.require()
    return base_env(
        postgres.create_database("ashiato_t"),
        keys_dir=tmp / "keys",
        keystore_url=postgres.create_database("ashiato_k"),
        **env_extra,
    )


def make_deployment(tmp: Path, *, backend: str, **env_extra: str) -> Deployment:
    env = deployment_env(tmp, backend, **env_extra)
    site = cli_json(env, "site", "add", "shop", "--origin", SITE_ORIGIN, "--consent", "notice")
    server = Server(env, tmp / "server.log")
    return Deployment(server, env, env["ASHIATO_DATABASE_URL"], site["site_key"], tmp)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend the test runs against (it runs once per backend)."""
    name = str(request.param)
    if name == "postgresql":
        postgres.require()
    return name


@pytest.fixture(scope="session", autouse=True)
def _no_personal_data_in_any_server_log() -> Iterator[None]:
    """After the whole suite: no server log (every `ashiato serve` any test started, the
    canary and legal suites' access logs included) holds an email address, a traceback
    or a query string. A failure here shows as an error at the last test's teardown."""
    yield
    leaks = leaks_in_logs(SERVER_LOGS)
    assert not leaks, f"{len(leaks)} leak(s) in server logs:\n" + "\n".join(leaks[:20])


@pytest.fixture(scope="module", autouse=True)
def _drop_postgres_databases() -> Iterator[None]:
    """Drop the PostgreSQL databases the module's deployments made (after their servers,
    module fixtures included, have stopped: autouse fixtures are set up first)."""
    since = postgres.created()
    yield
    postgres.drop_created(since)


@pytest.fixture(scope="module")
def deployment(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One server per test module (starting one costs about a second)."""
    dep = make_deployment(tmp_path_factory.mktemp("deployment"), backend=backend)
    dep.server.start()
    yield dep
    dep.server.stop()
    assert "Traceback" not in dep.server.logs(), dep.server.logs()


@pytest.fixture
def fresh_deployment(backend: str, tmp_path: Path) -> Deployment:
    """A deployment whose server the test starts (and may kill) itself."""
    return make_deployment(tmp_path, backend=backend)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): inspects SQLite's files; skipped on PostgreSQL"
    )


@pytest.fixture(autouse=True)
def _sqlite_only(request: pytest.FixtureRequest) -> None:
    """Skip a test marked ``sqlite_only`` where it runs on PostgreSQL (autouse: before the
    test's own function fixtures build anything)."""
    marker = request.node.get_closest_marker("sqlite_only")
    if marker is None:
        return
    assert "backend" in request.fixturenames, "sqlite_only marks tests that use `backend`"
    if request.getfixturevalue("backend") == "postgresql":
        pytest.skip(f"SQLite only: {marker.args[0]}")
