"""``ashiato reports rebuild``: count every stored event into the dashboard's roll-ups
again (a repair: the collector's catch-up job keeps them counted by itself). Ingest goes
on meanwhile; the dashboard reads raw events until the count is nearly done."""

from __future__ import annotations

import argparse
import time

from tracker.cli.common import Subparsers, emit, json_flag, with_store
from tracker.settings import Settings
from tracker.storage import Store


def register(commands: Subparsers) -> None:
    group = commands.add_parser("reports", help="the dashboard's roll-ups")
    sub = group.add_subparsers(title="reports commands", metavar="COMMAND")
    rebuild = sub.add_parser("rebuild", help="count every stored event into the roll-ups again")
    json_flag(rebuild)
    rebuild.set_defaults(run=cmd_rebuild)


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> float:
        started = time.monotonic()
        await store.rebuild_rollups()
        return time.monotonic() - started

    seconds = with_store(settings, work)
    emit(args, {"rebuilt": True, "seconds": round(seconds, 3)},
         f"roll-ups rebuilt in {seconds:.1f} s")  # fmt: skip
    return 0
