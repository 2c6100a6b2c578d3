"""``ashiato keys init | rotate | retire | status``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from privacy import keys
from tracker.cli.common import (
    Progress,
    Subparsers,
    emit,
    json_flag,
    require_existing,
    with_parts,
)
from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.storage.keystore import KeyStore, open_keystore
from tracker.wiring import keyring_source


def register(commands: Subparsers) -> None:
    group = commands.add_parser("keys", help="master keys: create, rotate, retire")
    sub = group.add_subparsers(title="keys commands", metavar="COMMAND")
    init = sub.add_parser("init", help="create the master key file (0600); never overwrites")
    init.add_argument("--file", help="where (default: ASHIATO_MASTER_KEY_FILE)")
    json_flag(init)
    init.set_defaults(run=cmd_init)
    rotate = sub.add_parser(
        "rotate",
        help="new key-encryption key; re-wrap every data key (resumes an interrupted rotation)",
    )
    rotate.add_argument("--batch", type=int, default=500, help="data keys per transaction")
    json_flag(rotate)
    rotate.set_defaults(run=cmd_rotate)
    retire = sub.add_parser("retire", help="drop an old key-encryption key that wraps nothing")
    retire.add_argument("kek_id")
    json_flag(retire)
    retire.set_defaults(run=cmd_retire)
    status = sub.add_parser("status", help="key-encryption keys and the data keys each wraps")
    json_flag(status)
    status.set_defaults(run=cmd_status)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.master_key_file
    if not path:
        raise ConfigError("say where: --file PATH or ASHIATO_MASTER_KEY_FILE")
    keyring = keys.init_key_file(path)
    emit(
        args,
        {"key_file": str(Path(path)), "primary": keyring.primary},
        f"created {path} (mode 0600), primary key {keyring.primary}\n"
        "Back it up apart from the database: without it no personal data can be read.",
    )
    return 0


def _with_keystore(settings: Settings, work: Any) -> Any:
    import asyncio

    require_existing(("ASHIATO_KEYSTORE_URL", settings.keystore_url))

    async def run() -> Any:
        keystore: KeyStore = open_keystore(settings.keystore_url)
        try:
            await keystore.migrate()
            return await work(keystore)
        finally:
            await keystore.close()

    return asyncio.run(run())


def _audit(settings: Settings, action: str, subject: str, detail: dict[str, Any]) -> None:
    with_parts(settings, lambda parts: parts.audit.record("cli", action, subject, detail))


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch < 1:
        raise ConfigError("--batch must be at least 1")
    source = keyring_source(settings)
    report = _with_keystore(
        settings,
        lambda ks: keys.rotate(
            source,
            ks,
            settings.master_key_file,
            batch=args.batch,
            progress=Progress("re-wrapping data keys"),
        ),
    )
    _audit(
        settings,
        "keys.rotate",
        report.primary,
        {"rewrapped": report.rewrapped, "generated": report.generated},
    )
    verb = "rotated to" if report.generated else "resumed rotation to"
    retire = " ".join(report.retirable)
    emit(
        args,
        {
            "primary": report.primary,
            "generated": report.generated,
            "rewrapped": report.rewrapped,
            "retirable": list(report.retirable),
        },
        f"{verb} {report.primary}: {report.rewrapped} data keys re-wrapped"
        + (
            f"\nold keys that wrap nothing now: {retire}\nretire them with "
            "`ashiato keys retire ID` once no backup still needs them"
            if retire
            else ""
        ),
    )
    return 0


def cmd_retire(args: argparse.Namespace, settings: Settings) -> int:
    source = keyring_source(settings)
    keyring = _with_keystore(
        settings, lambda ks: keys.retire(source, ks, settings.master_key_file, args.kek_id)
    )
    emit(
        args,
        {"retired": args.kek_id, "keks": sorted(keyring.keks)},
        f"retired {args.kek_id}; key file now holds {', '.join(sorted(keyring.keks))}",
    )
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    source = keyring_source(settings)
    state = _with_keystore(settings, lambda ks: keys.status(source.keyring, ks))
    lines = [
        f"{k}{' (primary)' if k == state.primary else ''}: {n} data keys"
        for k, n in state.keys_per_kek.items()
    ]
    lines += [
        f"{k}: {n} data keys, KEY MISSING from the key file" for k, n in state.missing.items()
    ]
    if state.problem:
        lines.append(f"WRONG MASTER KEY: {state.problem}")
    emit(
        args,
        {
            "primary": state.primary,
            "keys_per_kek": dict(state.keys_per_kek),
            "missing": dict(state.missing),
            "problem": state.problem,
        },
        "\n".join(lines),
    )
    return 1 if state.missing or state.problem else 0
