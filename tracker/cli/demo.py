"""``ashiato demo``: what ``make run`` prepares before serving — the demo site (its
origins those of the address the server is about to listen on) and a console admin —
and the addresses and sign-in to print. Safe to run again: nothing is made twice."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tracker.cli.common import Subparsers, emit, json_flag, now_ms, with_parts
from tracker.cli.sites import site_json, snippet
from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.sites import create_site, edit_site, normalise_origin
from tracker.storage.records import Site
from tracker.wiring import Parts

DEMO_ADMIN = "admin@example.com"
_ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")  # noqa: S104 (compared with, not bound)


def register(commands: Subparsers) -> None:
    demo = commands.add_parser(
        "demo", help="create the demo site (or add origins to it) and a console admin"
    )
    demo.add_argument(
        "--origin",
        action="append",
        help="origin(s) of the demo page, added to the site's (default: those of "
        "ASHIATO_PUBLIC_URL or http://127.0.0.1:PORT and http://localhost:PORT, "
        "PORT being ASHIATO_PORT)",
    )
    demo.add_argument(
        "--admin",
        default=DEMO_ADMIN,
        metavar="EMAIL",
        help=f"the console admin to create when missing (default: {DEMO_ADMIN})",
    )
    json_flag(demo)
    demo.set_defaults(run=cmd_demo)


def base_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the server about to start."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{settings.port}"


def default_origins(settings: Settings) -> list[str]:
    if not 0 < settings.port < 65536:
        raise ConfigError("ASHIATO_PORT (make run PORT=…) must be 1-65535")
    base = urlsplit(base_url(settings))
    origins = [f"{base.scheme}://{base.netloc}"]
    if not settings.public_url and base.hostname in ("127.0.0.1", "localhost"):
        origins += [f"http://127.0.0.1:{settings.port}", f"http://localhost:{settings.port}"]
    return list(dict.fromkeys(normalise_origin(o) for o in origins))


@dataclass(frozen=True, slots=True)
class Prepared:
    site: Site
    added_origins: tuple[str, ...]
    admin_created: bool
    password: str | None


async def prepare(parts: Parts, origins: list[str], admin: str) -> Prepared:
    from tracker.console.accounts import Accounts  # Argon2: only for this command
    from tracker.demo import DEMO_SITE

    now = now_ms()
    wanted = [normalise_origin(o) for o in origins]
    live = [s for s in await parts.store.list_sites() if not s.settings.removed_at]
    site = next((s for s in live if s.name == DEMO_SITE), None)
    if site is None:
        site, _ = await create_site(parts.store, parts.vault, DEMO_SITE, wanted, "notice", now=now)
        added = tuple(wanted)
    else:
        added = tuple(o for o in dict.fromkeys(wanted) if o not in site.origins)
        if added:
            site = await edit_site(
                parts.store, site, origins=(*site.origins, *added),
                consent_mode=site.consent_mode, identify=site.settings.identify,
                forms=site.settings.forms,
            )  # fmt: skip
    accounts = Accounts(parts.store, parts.personal, parts.vault)
    if await accounts.find(admin) is not None:
        return Prepared(site, added, admin_created=False, password=None)
    _, password = await accounts.add(admin, "admin", now=now)
    return Prepared(site, added, admin_created=True, password=password)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    origins = args.origin or default_origins(settings)
    done = with_parts(settings, lambda parts: prepare(parts, origins, args.admin))
    base = args.origin[0].rstrip("/") if args.origin else base_url(settings)
    data = site_json(done.site) | {
        "snippet": snippet(done.site, f"{base}/t.js"),
        "demo_page": f"{base}/demo/",
        "console": f"{base}/admin/",
        "added_origins": list(done.added_origins),
        "admin": {"email": args.admin, "created": done.admin_created}
        | ({"password": done.password} if done.password else {}),
    }
    emit(args, data, _text(data, done))
    return 0


def _command() -> str:
    """How this command was called (``.venv/bin/ashiato`` under ``make run``)."""
    called = sys.argv[0]
    return called if os.path.basename(called) == "ashiato" else "ashiato"


def _text(data: dict[str, Any], done: Prepared) -> str:
    admin, rule = data["admin"]["email"], "=" * 72
    if done.password:
        sign_in = (f"  Sign in:    {admin}\n"
                   f"  Password:   {done.password}\n"
                   "              (one-time: shown only now; change it under Account)")  # fmt: skip
    else:
        sign_in = (f"  Sign in:    {admin} (made on the first run; a new password:\n"
                   f"              {_command()} user reset {admin})")  # fmt: skip
    added = ""
    if done.added_origins and not done.admin_created:
        added = f"demo site origins added: {', '.join(done.added_origins)}\n"
    return (
        f"{added}demo site key: {done.site.key}\n\nThe snippet:\n{data['snippet']}\n\n"
        f"{rule}\n  Demo page:  {data['demo_page']}\n"
        f"  Console:    {data['console']}\n{sign_in}\n{rule}"
    )
