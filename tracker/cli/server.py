"""``ashiato serve``, ``migrate`` and (from ``tracker.cli.demo``) ``demo``."""

from __future__ import annotations

import argparse
from typing import Any

from tracker.cli import demo
from tracker.cli.common import Subparsers, emit, json_flag, with_parts
from tracker.errors import ConfigError
from tracker.http import BoundedHttpToolsProtocol
from tracker.settings import Settings
from tracker.wiring import Parts


def register(commands: Subparsers) -> None:
    serve = commands.add_parser("serve", help="run the collector and API server")
    serve.add_argument("--host", help="address to bind (default: ASHIATO_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: ASHIATO_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="server processes (default: 1)")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    json_flag(migrate)
    migrate.set_defaults(run=cmd_migrate)

    demo.register(commands)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from tracker import logs

    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    if not 0 < port < 65536 or workers < 1:
        raise ConfigError("--port must be 1-65535 and --workers at least 1")
    logs.configure(settings.log_level)

    async def check(parts: Parts) -> None:  # fail here, clearly, not inside a worker
        await parts.store.ping()
        await parts.keystore.ping()

    with_parts(settings, check, create=True)
    uvicorn.run(
        "tracker.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=BoundedHttpToolsProtocol,
        loop="uvloop",
        lifespan="on",
        access_log=False,
        server_header=False,
        log_config=logs.uvicorn_log_config(),
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
        proxy_headers=False,  # X-Forwarded-For is ours to judge (ASHIATO_TRUSTED_PROXIES)
    )
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> dict[str, Any]:
        return {
            "schema_version": await parts.store.schema_version(),
            "keystore_version": await parts.keystore.schema_version(),
        }

    result = with_parts(settings, work, create=True)
    emit(args, result, f"database is at schema version {result['schema_version']}")
    return 0
