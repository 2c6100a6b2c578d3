"""``ashiato leads …``: commands about leads, one module per concern.

argparse allows the ``leads`` group once, so it is made here and each concern's module
adds its subcommands to it (``register_leads(sub)``): list it in ``CONCERNS``.
"""

from __future__ import annotations

from collections.abc import Callable

from tracker.cli import duplicates, scoring
from tracker.cli.common import Subparsers

CONCERNS: tuple[Callable[[Subparsers], None], ...] = (
    duplicates.register_leads,
    scoring.register_leads,
)


def register(commands: Subparsers) -> None:
    group = commands.add_parser("leads", help="commands about leads")
    sub = group.add_subparsers(title="leads commands", metavar="COMMAND")
    for register_leads in CONCERNS:
        register_leads(sub)
