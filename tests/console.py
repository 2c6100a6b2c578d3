"""What the console tests share: users made by the real CLI, signed-in HTTP clients,
form tokens, and the session row behind a cookie (to age it in the database)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LOOPBACK_HOOKS, Deployment, make_deployment
from tests.servers import with_store
from tracker.console.accounts import Accounts
from tracker.console.sessions import cookie_name, token_hash
from tracker.settings import Settings
from tracker.storage.records import ConsoleSession, Site
from tracker.wiring import open_parts

COOKIE = cookie_name(False)  # the tests' servers answer plain http on 127.0.0.1
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SIGNIN_TOKEN = re.compile(r'name="token" value="([^"]+)"')


def add_user(env: dict[str, str], email: str, role: str, password: str = PASSWORD) -> str:
    """``ashiato user add … --password-stdin --json``; the new user's id."""
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "user", "add", email, "--role", role,
         "--password-stdin", "--json"],
        input=password + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(re.search(r'"id":"(u_[0-9a-f]+)"', done.stdout).group(1))  # type: ignore[union-attr]


def add_users(env: dict[str, str], *users: tuple[str, str]) -> None:
    """``(email, role)`` users with ``PASSWORD``, made in this process (the same
    ``Accounts.add`` the CLI calls, without starting a process per user)."""

    async def work() -> None:
        parts = await open_parts(Settings.from_env(env), migrate=False)
        try:
            accounts = Accounts(parts.store, parts.personal, parts.vault)
            for email, role in users:
                await accounts.add(email, role, now=time.time_ns() // 1_000_000,
                                   password=PASSWORD)  # fmt: skip
        finally:
            await parts.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may run a loop here
        pool.submit(asyncio.run, work()).result()


def signin(
    url: str, email: str, password: str = PASSWORD, *, code: str = "", planted: str | None = None
) -> tuple[httpx.Client, httpx.Response]:
    """A client that went through the sign-in form (with an attacker's cookie value
    ``planted`` beforehand, if given); and the sign-in POST's answer."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    if planted is not None:
        client.cookies.set(COOKIE, planted, domain="127.0.0.1")
    page = client.get("/admin/signin")
    token = _SIGNIN_TOKEN.search(page.text)
    assert token is not None, page.text
    answer = client.post("/admin/signin", data={"token": token.group(1), "email": email,
                                                "password": password, "code": code})  # fmt: skip
    return client, answer


def signed_in(url: str, email: str, password: str = PASSWORD) -> httpx.Client:
    client, answer = signin(url, email, password)
    assert answer.status_code == 303, answer.text
    return client


def csrf(client: httpx.Client, path: str = "/admin/account") -> str:
    page = client.get(path)
    found = _CSRF.search(page.text)
    assert found is not None, f"{path}: {page.status_code}"
    return found.group(1)


def post(client: httpx.Client, path: str, data: dict[str, Any], *, token: str | None = None
         ) -> httpx.Response:  # fmt: skip
    return client.post(path, data={"csrf": token if token is not None else csrf(client)} | data)


def session_of(dep: Deployment, client: httpx.Client) -> ConsoleSession | None:
    token = client.cookies.get(COOKIE)
    assert token, "the client holds no console cookie"
    return with_store(dep.database_url, lambda s: s.console_session(token_hash(token)))


def age_session(dep: Deployment, client: httpx.Client, **fields: int) -> None:
    """Rewrite the client's session row with older times (``seen_at``, ``created_at``,
    ``confirmed_at``): what 30 idle minutes or 12 hours would have left."""
    session = session_of(dep, client)
    assert session is not None
    aged = dataclasses.replace(session, **fields)

    async def rewrite(store: Any) -> None:
        await store.end_console_session(session.token_hash)
        await store.start_console_session(aged, replaces=None, stale=0)

    with_store(dep.database_url, rewrite)


def console_deployment(tmp: Path) -> Iterator[Deployment]:
    """A running server with a legal, an admin and a marketing user (``ROLE@example.jp``)."""
    dep = make_deployment(tmp, backend="sqlite", ASHIATO_RATE_LIMIT_IP="0", **LOOPBACK_HOOKS)
    add_users(dep.env, *((f"{r}@example.jp", r) for r in ("legal", "admin", "marketing")))
    dep.server.start()
    yield dep
    dep.server.stop()
    assert "Traceback" not in dep.server.logs()


def stored(dep: Deployment, method: str) -> list[Any]:
    """What the server's database holds now (read directly: no CLI process to start)."""
    found: list[Any] = with_store(dep.database_url, lambda store: getattr(store, method)())
    return found


def site_named(dep: Deployment, name: str) -> Site:
    return next(s for s in stored(dep, "list_sites") if s.name == name)


def user_of(dep: Deployment, client: httpx.Client) -> str:
    session = session_of(dep, client)
    assert session is not None
    return session.user_id
