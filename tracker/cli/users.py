"""``ashiato user add | list | disable | reset``: the console's users."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tracker.cli.common import Subparsers, emit, json_flag, now_ms, with_parts
from tracker.console.accounts import ROLES, Account, Accounts
from tracker.errors import Invalid
from tracker.scope import site_ids, site_keys_of
from tracker.settings import Settings
from tracker.wiring import Parts


def register(commands: Subparsers) -> None:
    group = commands.add_parser("user", help="console users (sign-in at /admin/)")
    sub = group.add_subparsers(title="user commands", metavar="COMMAND")
    add = sub.add_parser("add", help="create a user; prints a one-time password")
    add.add_argument("email")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin instead"
    )
    add.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="KEY",
        help="limit a marketing or legal user to this site (repeat for several)",
    )
    json_flag(add)
    add.set_defaults(run=cmd_add)
    listing = sub.add_parser("list", help="list users")
    json_flag(listing)
    listing.set_defaults(run=cmd_list)
    for name, run, text in (
        ("disable", cmd_disable, "stop a user signing in; ends their sessions"),
        ("reset", cmd_reset, "new one-time password; ends sessions, removes TOTP"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("email")
        json_flag(command)
        command.set_defaults(run=run)


def user_json(account: Account, sites: list[str] | None = None) -> dict[str, Any]:
    user = account.user
    return {
        "id": user.id,
        "email": account.email,
        "role": user.role,
        "sites": sites,
        "totp": user.totp is not None,
        "language": user.language,
        "time_zone": user.time_zone,
        "created_at": user.created_at,
        "disabled_at": user.disabled_at,
    }


def _accounts(parts: Parts) -> Accounts:
    return Accounts(parts.store, parts.personal, parts.vault)


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    given = None
    if args.password_stdin:
        given = sys.stdin.readline().rstrip("\r\n")
        if not given:
            raise Invalid("no password on stdin")

    async def work(parts: Parts) -> tuple[Account, str]:
        ids = await site_ids(parts.store, args.site)
        return await _accounts(parts).add(
            args.email, args.role, now=now_ms(), password=given, sites=ids
        )

    account, password = with_parts(settings, work)
    shown = {} if given else {"password": password}
    limit = f", sites {', '.join(sorted(set(args.site)))}" if args.site else ""
    emit(
        args,
        user_json(account, sorted(set(args.site)) or None) | shown,
        f"console user {account.email} ({account.user.role}{limit}) created"
        + ("" if given else f"\none-time password (shown only now): {password}"),
    )
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> list[tuple[Account, list[str] | None]]:
        found = await _accounts(parts).all()
        return [(a, await site_keys_of(parts.store, a.user.sites)) for a in found]

    accounts = with_parts(settings, work)
    lines = [
        f"{a.user.id}  {a.email}  {a.user.role}{'  sites ' + ','.join(s) if s else ''}"
        f"{'  totp' if a.user.totp else ''}{'  DISABLED' if a.user.disabled_at else ''}"
        for a, s in accounts
    ]
    emit(args, {"users": [user_json(a, s) for a, s in accounts]},
         "\n".join(lines) or "no users")  # fmt: skip
    return 0


def cmd_disable(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> None:
        accounts = _accounts(parts)
        await accounts.disable(await accounts.named(args.email), now=now_ms())

    with_parts(settings, work)
    emit(args, {"disabled": args.email}, f"console user {args.email} disabled")
    return 0


def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> str:
        accounts = _accounts(parts)
        return await accounts.reset(await accounts.named(args.email))

    password = with_parts(settings, work)
    emit(
        args,
        {"reset": args.email, "password": password},
        f"console user {args.email}: new one-time password (shown only now): {password}",
    )
    return 0
