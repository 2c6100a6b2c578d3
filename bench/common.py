"""What the benchmark scripts share: a fresh deployment's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from privacy.keys import init_key_file  # noqa: E402

ORIGIN = "https://www.example.co.jp"


def bench_env(workdir: Path, **extra: str) -> dict[str, str]:
    """A clean ASHIATO_* environment with its own database, key file and key store, and
    no rate limits."""
    init_key_file(workdir / "keys" / "master.key")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHIATO_")}
    return (
        env
        | {
            "ASHIATO_DATABASE_URL": f"sqlite:///{workdir / 'data' / 'bench.db'}",
            "ASHIATO_KEYSTORE_URL": f"sqlite:///{workdir / 'keys' / 'keystore.db'}",
            "ASHIATO_MASTER_KEY_FILE": str(workdir / "keys" / "master.key"),
            "ASHIATO_ENV_FILE": "/nonexistent",
            "ASHIATO_LOG_LEVEL": "warning",
            # The load comes from one address (wrk on loopback): no rate limits.
            "ASHIATO_RATE_LIMIT_IP": "0",
            "ASHIATO_RATE_LIMIT_SITE": "0",
            "ASHIATO_RATE_LIMIT_API": "0",
        }
        | extra
    )


def postgres_database(admin_url: str, prefix: str) -> str:
    """A new, empty PostgreSQL database next to ``admin_url``'s; its URL."""
    import asyncio
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    name = f"{prefix}_{secrets.token_hex(4)}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_url, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_postgres_database(admin_url: str, url: str) -> None:
    import asyncio
    from urllib.parse import urlsplit

    import asyncpg

    name = urlsplit(url).path.lstrip("/")

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def cli(env: dict[str, str], *args: str) -> Any:
    """Run ``ashiato ARGS --json`` and return its JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "tracker", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def new_site(env: dict[str, str], name: str) -> Any:
    """Migrate the deployment's databases (only ``migrate`` and ``serve`` create them),
    then add a notice-mode site for ``ORIGIN``; return ``site add``'s JSON."""
    subprocess.run([sys.executable, "-m", "tracker", "migrate"], env=env,
                   capture_output=True, check=True)  # fmt: skip
    return cli(env, "site", "add", name, "--origin", ORIGIN, "--consent", "notice")
