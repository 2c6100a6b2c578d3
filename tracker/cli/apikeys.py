"""``ashiato apikey create | list | revoke``."""

from __future__ import annotations

import argparse

from tracker.api.auth import SCOPES, new_api_key
from tracker.cli.common import Subparsers, emit, json_flag, now_ms, with_store
from tracker.errors import NotFound
from tracker.scope import site_ids, site_keys_of
from tracker.settings import Settings
from tracker.storage import Store
from tracker.storage.records import ApiKey


def register(commands: Subparsers) -> None:
    group = commands.add_parser("apikey", help="API keys for MA tools and backends")
    sub = group.add_subparsers(title="apikey commands", metavar="COMMAND")
    create = sub.add_parser("create", help="create a key; prints its secret once")
    create.add_argument("name")
    create.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        required=True,
        help="read, identify, privacy or admin (repeat for several)",
    )
    create.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="KEY",
        help="limit the key to this site (repeat for several): it sees nothing of the others",
    )
    json_flag(create)
    create.set_defaults(run=cmd_create)
    listing = sub.add_parser("list", help="list keys (never their secrets)")
    json_flag(listing)
    listing.set_defaults(run=cmd_list)
    revoke = sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id")
    json_flag(revoke)
    revoke.set_defaults(run=cmd_revoke)


def key_json(key: ApiKey, sites: list[str] | None = None) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": list(key.scopes),
        "sites": sites,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> tuple[ApiKey, str]:
        ids = await site_ids(store, args.site)
        record, secret = new_api_key(args.name, args.scope, now=now_ms(), sites=ids)
        await store.add_api_key(record)
        return record, secret

    record, secret = with_store(settings, work)
    limit = f", sites {', '.join(args.site)}" if args.site else ""
    emit(
        args,
        key_json(record, sorted(set(args.site)) or None) | {"key": secret},
        f"API key {record.id} ({', '.join(record.scopes)}{limit}) created."
        f" It is shown only now:\n{secret}",
    )
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> list[tuple[ApiKey, list[str] | None]]:
        return [(k, await site_keys_of(store, k.sites)) for k in await store.list_api_keys()]

    keys = with_store(settings, work)
    lines = [
        f"{k.id}  {k.name}  {','.join(k.scopes)}"
        f"{'  sites ' + ','.join(sites) if sites else ''}{'  REVOKED' if k.revoked_at else ''}"
        for k, sites in keys
    ]
    emit(args, {"keys": [key_json(k, s) for k, s in keys]}, "\n".join(lines) or "no API keys")
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    revoked = with_store(settings, lambda store: store.revoke_api_key(args.id, now_ms()))
    if not revoked:
        raise NotFound(f"no active API key {args.id!r}")
    emit(args, {"revoked": args.id}, f"API key {args.id} revoked")
    return 0
