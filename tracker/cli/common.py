"""What the command modules share: running async work, output, progress."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.storage import Store, open_store
from tracker.wiring import Parts, open_parts

T = TypeVar("T")
Subparsers = Any  # argparse's _SubParsersAction is private


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names; None for other databases."""
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def require_existing(*settings: tuple[str, str]) -> None:
    """Refuse a SQLite database file that does not exist (``(setting name, URL)`` pairs).

    Only ``migrate`` and ``serve`` create databases: for any other command a missing
    file is a mistyped path, and creating it would hide that behind an empty database.
    """
    for name, url in settings:
        path = sqlite_file(url)
        if path is not None and not path.exists():
            where = str(path) if path.is_absolute() else f"{path} ({path.absolute()})"
            raise ConfigError(
                f"{name} names {where}, which does not exist: check the setting,"
                " or create a new database with `ashiato migrate`"
            )


def _databases(settings: Settings) -> tuple[tuple[str, str], ...]:
    return (
        ("ASHIATO_DATABASE_URL", settings.database_url),
        ("ASHIATO_KEYSTORE_URL", settings.keystore_url),
    )


def with_store(
    settings: Settings, work: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """Run ``work`` with the data store only (no keys needed); ``create`` a missing
    SQLite file (``migrate`` and ``serve`` only)."""
    if not create:
        require_existing(_databases(settings)[0])

    async def run() -> T:
        store = open_store(settings.database_url)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def with_parts(
    settings: Settings, work: Callable[[Parts], Awaitable[T]], *, create: bool = False
) -> T:
    """Run ``work`` with the store, the key store and the keys; ``create`` missing
    SQLite files (``migrate`` and ``serve`` only)."""
    if not create:
        require_existing(*_databases(settings))

    async def run() -> T:
        parts = await open_parts(settings)
        try:
            return await work(parts)
        finally:
            await parts.close()

    return asyncio.run(run())


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
    else:
        print(text)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Progress:
    """``label: done/total (pct)`` on stderr, redrawn in place on a terminal."""

    def __init__(self, label: str, *, stream: Any = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.2:
            return
        self._last = now
        pct = 100 if total == 0 else done * 100 // total
        end = "\n" if done >= total else ""
        prefix = "\r" if self.stream.isatty() else ""
        if not self.stream.isatty() and done < total and pct % 10:
            return
        self.stream.write(f"{prefix}{self.label}: {done}/{total} ({pct}%){end}")
        self.stream.flush()
