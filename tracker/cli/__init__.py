"""The ``ashiato`` command.

Exit codes: 0 done, 1 failure, 2 usage error. Commands that create or report things
accept ``--json`` and then print exactly one JSON object on stdout. Long-running
commands report progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tracker.errors import AshiatoError, Refused
from tracker.settings import Settings

from . import apikeys, disclosure, keys, leads, privacy, reports, scoring, server, sites, users

MODULES = (server, sites, keys, apikeys, privacy, leads, scoring, users, disclosure, reports)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        return int(args.run(args, settings))
    except Refused as exc:  # the user's input was refused
        print(f"ashiato: error: {exc.message}", file=sys.stderr)
        return 2
    except AshiatoError as exc:
        print(f"ashiato: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ashiato: interrupted", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ashiato", description="ashiato: first-party tracking and consent service"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in MODULES:
        module.register(commands)
    return parser
