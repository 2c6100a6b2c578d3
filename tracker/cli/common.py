"""What the command modules share: running async work, output, progress."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from tracker.settings import Settings
from tracker.storage import Store, open_store
from tracker.wiring import Parts, open_parts

T = TypeVar("T")
Subparsers = Any  # argparse's _SubParsersAction is private


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` with the data store only (no keys needed)."""

    async def run() -> T:
        store = open_store(settings.database_url)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def with_parts(settings: Settings, work: Callable[[Parts], Awaitable[T]]) -> T:
    """Run ``work`` with the store, the key store and the keys."""

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
