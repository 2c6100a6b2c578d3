"""``ashiato disclosure``: the site's 外部送信 notice, and the recipients it lists.

ashiato disclosure --site KEY [--lang ja|en] [--format html|json]
ashiato disclosure add --site KEY --legal-name N --service S --item I … --purpose P …
                       [--opt-out URL]
ashiato disclosure remove --site KEY ID
ashiato disclosure operator --site KEY --legal-name N [--opt-out URL]
"""

from __future__ import annotations

import argparse
import sys

import orjson

from privacy.disclosure import ITEMS, LANGUAGES, PURPOSES, Disclosures, Notice
from tracker import disclosure
from tracker.cli.common import Subparsers, emit, json_flag, now_ms, with_parts
from tracker.errors import Invalid, NotFound
from tracker.settings import Settings
from tracker.storage.records import Site
from tracker.wiring import Parts


def register(commands: Subparsers) -> None:
    show = commands.add_parser("disclosure", help="the 外部送信 notice and its recipients")
    show.add_argument("--site", help="the site's key")
    show.add_argument("--lang", choices=LANGUAGES, default="ja")
    show.add_argument("--format", choices=("html", "json"), default="html")
    show.set_defaults(run=cmd_show)
    sub = show.add_subparsers(title="disclosure commands", metavar="COMMAND")
    add = sub.add_parser("add", help="list a recipient the site's pages send data to")
    add.add_argument("--site", required=True, help="the site's key")
    add.add_argument("--legal-name", required=True, help="the recipient's legal name")
    add.add_argument("--service", required=True, help="the service's name")
    add.add_argument("--item", action="append", required=True, choices=ITEMS,
                     metavar="ITEM", help=f"what is sent (repeat): {', '.join(ITEMS)}")  # fmt: skip
    add.add_argument("--purpose", action="append", required=True, choices=PURPOSES,
                     metavar="PURPOSE", help=f"why (repeat): {', '.join(PURPOSES)}")  # fmt: skip
    add.add_argument("--opt-out", help="where visitors opt out (http(s) URL)")
    json_flag(add)
    add.set_defaults(run=cmd_add)
    remove = sub.add_parser("remove", help="stop listing a recipient")
    remove.add_argument("--site", required=True, help="the site's key")
    remove.add_argument("id", help="the recipient's id (see --format json)")
    json_flag(remove)
    remove.set_defaults(run=cmd_remove)
    operator = sub.add_parser("operator", help="who runs ashiato for the site (its legal name)")
    operator.add_argument("--site", required=True, help="the site's key")
    operator.add_argument("--legal-name", required=True, help="the site operator's legal name")
    operator.add_argument("--opt-out", help="the site's own opt-out page (http(s) URL)")
    json_flag(operator)
    operator.set_defaults(run=cmd_operator)


async def _site(parts: Parts, key: str | None) -> Site:
    if not key:
        raise Invalid("--site KEY is required")
    site = next((s for s in await parts.store.list_sites() if s.key == key), None)
    if site is None:
        raise NotFound(f"no site with key {key!r}")
    return site


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> Notice:
        return await Disclosures(parts.store, parts.audit).notice(await _site(parts, args.site))

    notice = with_parts(settings, work).document()
    if args.format == "json":
        sys.stdout.write(orjson.dumps(notice, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(disclosure.page(notice, args.lang, nonce="", json_url="") + "\n")
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> str:
        site = await _site(parts, args.site)
        entry = await Disclosures(parts.store, parts.audit).add(
            site, legal_name=args.legal_name, service_name=args.service, items=args.item,
            purposes=args.purpose, opt_out_url=args.opt_out, actor="cli", now=now_ms(),
        )  # fmt: skip
        return entry.id

    entry_id = with_parts(settings, work)
    emit(args, {"id": entry_id}, f"recipient {entry_id} listed in the notice of {args.site}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> None:
        site = await _site(parts, args.site)
        await Disclosures(parts.store, parts.audit).remove(site, args.id, actor="cli",
                                                            now=now_ms())  # fmt: skip

    with_parts(settings, work)
    emit(args, {"removed": args.id}, f"recipient {args.id} no longer listed")
    return 0


def cmd_operator(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> str:
        site = await _site(parts, args.site)
        entry = await Disclosures(parts.store, parts.audit).set_operator(
            site, legal_name=args.legal_name, opt_out_url=args.opt_out, actor="cli",
            now=now_ms(),
        )  # fmt: skip
        return entry.id

    entry_id = with_parts(settings, work)
    emit(args, {"id": entry_id}, f"the notice of {args.site} names {args.legal_name!r}")
    return 0
