"""``ashiato site add`` / ``site list``."""

from __future__ import annotations

import argparse
from typing import Any

from privacy.consent import CMP_SOURCES
from tracker.cli.common import Subparsers, emit, json_flag, now_ms, with_parts, with_store
from tracker.errors import NotFound
from tracker.settings import Settings
from tracker.sites import create_site, set_cmp
from tracker.storage import Store
from tracker.storage.records import (
    CONSENT_MODES,
    DEFAULT_CMP_MAPPING,
    IDENTIFY_POLICIES,
    CmpMapping,
    Site,
)
from tracker.wiring import Parts
from tracker.write_keys import issue_write_key


def register(commands: Subparsers) -> None:
    site = commands.add_parser("site", help="manage tracked sites")
    site_commands = site.add_subparsers(title="site commands", metavar="COMMAND")
    add = site_commands.add_parser("add", help="register a site; prints its key and snippet")
    add.add_argument("name")
    add.add_argument(
        "--origin",
        action="append",
        required=True,
        help="an origin the tag runs on, e.g. https://www.example.co.jp (repeat)",
    )
    add.add_argument(
        "--consent",
        choices=CONSENT_MODES,
        default="opt-in",
        help="opt-in: nothing until consent (EU, default); notice: Japan-style",
    )
    add.add_argument(
        "--identify",
        choices=IDENTIFY_POLICIES,
        default="any",
        help="any: forms and identify() count; signed: only signed tokens and "
        "the server API identify visitors",
    )
    add.add_argument(
        "--forms",
        choices=("marked", "all"),
        default="marked",
        help="capture forms marked data-ashiato (default) or every form",
    )
    add.add_argument(
        "--cookie-domain",
        default="",
        help="let the collector set the visitor cookie for this domain when it answers on a "
        "sibling host (t.example.co.jp for www.example.co.jp)",
    )
    add.add_argument(
        "--policy-version",
        default="unspecified",
        help="privacy-notice version receipts refer to by default",
    )
    cmp_options(add)
    json_flag(add)
    add.set_defaults(run=cmd_site_add)
    rotate = site_commands.add_parser(
        "write-key", help="issue a new write key for server-side senders (the old one stops)"
    )
    rotate.add_argument("site_key")
    json_flag(rotate)
    rotate.set_defaults(run=cmd_site_write_key)
    cmp = site_commands.add_parser(
        "cmp", help="set the CMP the tag reads and its mapping; prints the new snippet"
    )
    cmp.add_argument("site_key")
    cmp_options(cmp)
    json_flag(cmp)
    cmp.set_defaults(run=cmd_site_cmp)
    listing = site_commands.add_parser("list", help="list sites")
    json_flag(listing)
    listing.set_defaults(run=cmd_site_list)


def cmp_options(parser: argparse.ArgumentParser) -> None:
    """The CMP the tag reads (``cmp.js`` joins the snippet) and its purposes' mapping."""
    parser.add_argument("--cmp", action="append", choices=CMP_SOURCES, default=[],
                        help="read the site's consent management platform: tcf (IAB TCF "
                        "v2.2) or gcm (Google Consent Mode v2) (repeat)")  # fmt: skip
    for name, default in (
        ("tcf-analytics", DEFAULT_CMP_MAPPING.tcf_analytics),
        ("tcf-marketing", DEFAULT_CMP_MAPPING.tcf_marketing),
        ("gcm-analytics", DEFAULT_CMP_MAPPING.gcm_analytics),
        ("gcm-marketing", DEFAULT_CMP_MAPPING.gcm_marketing),
    ):
        kind, purpose = name.split("-")
        parser.add_argument(f"--{name}", default=",".join(default), metavar="LIST",
                            help=f"the {kind.upper()} purposes/types that grant {purpose} "
                            f"(default {','.join(default)}; TCF p8: the publisher's)")  # fmt: skip


def cmp_mapping(args: argparse.Namespace) -> CmpMapping:
    def items(text: str) -> tuple[str, ...]:
        return tuple(i.strip() for i in text.split(",") if i.strip())

    return CmpMapping(tuple(args.cmp), items(args.tcf_analytics), items(args.tcf_marketing),
                      items(args.gcm_analytics), items(args.gcm_marketing))  # fmt: skip


def site_json(site: Site) -> dict[str, Any]:
    return {
        "id": site.id,
        "name": site.name,
        "site_key": site.key,
        "origins": list(site.origins),
        "consent": site.consent_mode,
        "identify": site.settings.identify,
        "forms": site.settings.forms,
        "policy_version": site.settings.policy_version,
        "cookie_domain": site.settings.cookie_domain or None,
        "cmp": {f: list(getattr(site.settings.cmp, f)) for f in CmpMapping.__dataclass_fields__},
    }


def snippet(site: Site, tag_url: str) -> str:
    """The two script tags; the attributes tell the tag the site's consent and form mode.
    A site that reads a CMP gets a third: the adapter, with the purposes' mapping."""
    extra = ' data-consent="notice"' if site.consent_mode == "notice" else ""
    if site.settings.forms == "all":
        extra += ' data-forms="all"'
    return (
        "<script>window.ashiato=window.ashiato||function(){(ashiato.q=ashiato.q||[])"
        ".push(arguments)}</script>\n"
        f'<script async src="{tag_url}" data-site="{site.key}"{extra}></script>'
        + cmp_snippet(site.settings.cmp, tag_url)
    )


def cmp_snippet(cmp: CmpMapping, tag_url: str) -> str:
    if not cmp.signals:
        return ""
    attributes = "".join(
        f' data-{signal}-{purpose}="{",".join(getattr(cmp, f"{signal}_{purpose}"))}"'
        for signal in cmp.signals
        for purpose in ("analytics", "marketing")
    )
    return f'\n<script async src="{tag_url.rsplit("/", 1)[0]}/cmp.js"{attributes}></script>'


def cmd_site_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> tuple[Site, bytes, str]:
        site, secret = await create_site(
            parts.store,
            parts.vault,
            args.name,
            args.origin,
            args.consent,
            now=now_ms(),
            identify=args.identify,
            forms=args.forms,
            policy_version=args.policy_version,
            cookie_domain=args.cookie_domain,
            cmp=cmp_mapping(args),
        )
        return site, secret, await issue_write_key(parts.store, site.id, now=now_ms())

    site, secret, write_key = with_parts(settings, work)
    data = site_json(site) | {
        "snippet": snippet(site, settings.tag_url),
        "identify_secret": secret.hex(),
        "write_key": write_key,
    }
    emit(
        args,
        data,
        f"site {site.name!r} created\nsite key: {site.key}\n\n"
        f"Paste into every page (tag URL: where ashiato answers):\n{data['snippet']}\n\n"
        f"Identify secret (for signed identification; shown only now):\n"
        f"{data['identify_secret']}\n\n"
        f"Write key (Segment/RudderStack SDKs, POST /v1/batch; shown only now):\n{write_key}",
    )
    return 0


def cmd_site_write_key(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> str:
        site = next((s for s in await store.list_sites() if s.key == args.site_key), None)
        if site is None:
            raise NotFound(f"no site with key {args.site_key!r}")
        return await issue_write_key(store, site.id, now=now_ms())

    write_key = with_store(settings, work)
    emit(args, {"site_key": args.site_key, "write_key": write_key},
         f"new write key for {args.site_key} (shown only now; the old one stops working):\n"
         f"{write_key}")  # fmt: skip
    return 0


def cmd_site_cmp(args: argparse.Namespace, settings: Settings) -> int:
    """Replace the site's CMP setting (no --cmp: no adapter); consent administration,
    so it is audited."""

    async def work(parts: Parts) -> Site:
        site = next((s for s in await parts.store.list_sites() if s.key == args.site_key), None)
        if site is None:
            raise NotFound(f"no site with key {args.site_key!r}")
        changed = await set_cmp(parts.store, site, cmp_mapping(args))
        await parts.audit.record("cli", "site.cmp", f"site:{site.key}",
                                 {"signals": list(changed.settings.cmp.signals)})  # fmt: skip
        return changed

    site = with_parts(settings, work)
    data = site_json(site) | {"snippet": snippet(site, settings.tag_url)}
    emit(args, data, f"CMP setting of {site.key} changed; paste the new snippet:\n"
                     f"{data['snippet']}")  # fmt: skip
    return 0


def cmd_site_list(args: argparse.Namespace, settings: Settings) -> int:
    sites: list[Site] = with_store(settings, lambda store: store.list_sites())
    rows = [f"{s.key}  {s.name}  {s.consent_mode}  {' '.join(s.origins)}" for s in sites]
    emit(args, {"sites": [site_json(s) for s in sites]}, "\n".join(rows) or "no sites yet")
    return 0
