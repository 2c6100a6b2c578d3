"""``ashiato privacy export | erase | requests | reapply``, ``retention run``,
``audit verify``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from privacy import export
from privacy.files import OutputError, check_target, write_private
from tracker.cli.common import Progress, Subparsers, emit, json_flag, with_parts
from tracker.errors import Invalid
from tracker.settings import Settings
from tracker.storage.records import PrivacyRequest
from tracker.wiring import Parts


def _subject_flags(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the person's email (any case or width)")
    who.add_argument("--lead", help="a lead id")
    who.add_argument("--visitor", help="a visitor id (32 hex)")


def register(commands: Subparsers) -> None:
    group = commands.add_parser("privacy", help="data-subject requests: export, erase")
    sub = group.add_subparsers(title="privacy commands", metavar="COMMAND")
    exp = sub.add_parser("export", help="everything held about a person, decrypted")
    _subject_flags(exp)
    exp.add_argument(
        "-o",
        "--output",
        help="file to write (mode 0600); '-' for stdout; default: the export directory",
    )
    exp.add_argument(
        "--force", action="store_true", help="replace FILE if it exists (never a link)"
    )
    exp.add_argument("--format", choices=("json", "csv"), default="json")
    json_flag(exp)
    exp.set_defaults(run=cmd_export)
    erase = sub.add_parser("erase", help="erase a person everywhere (cannot be undone)")
    _subject_flags(erase)
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    json_flag(erase)
    erase.set_defaults(run=cmd_erase)
    reqs = sub.add_parser("requests", help="data-subject requests and their due dates")
    json_flag(reqs)
    reqs.set_defaults(run=cmd_requests)
    reapply = sub.add_parser("reapply", help="apply the erasure ledger again (after a restore)")
    json_flag(reapply)
    reapply.set_defaults(run=cmd_reapply)

    retention = commands.add_parser("retention", help="delete what is past its retention")
    rsub = retention.add_subparsers(title="retention commands", metavar="COMMAND")
    run = rsub.add_parser("run", help="run retention now")
    run.add_argument("--dry-run", action="store_true", help="count only, delete nothing")
    json_flag(run)
    run.set_defaults(run=cmd_retention)

    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    asub = audit.add_subparsers(title="audit commands", metavar="COMMAND")
    verify = asub.add_parser("verify", help="check the chain; report the first broken link")
    json_flag(verify)
    verify.set_defaults(run=cmd_audit_verify)
    reanchor = asub.add_parser(
        "reanchor", help="after restoring older data: record the loss, anchor the log anew"
    )
    reanchor.add_argument("--yes", action="store_true", help="yes, the data was restored")
    json_flag(reanchor)
    reanchor.set_defaults(run=cmd_audit_reanchor)


def _who(args: argparse.Namespace) -> dict[str, str]:
    return {k: getattr(args, k) for k in ("email", "lead", "visitor") if getattr(args, k)}


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    output = None if args.output in (None, "-") else Path(args.output)
    if output is not None:  # refuse a bad target before a request is even opened
        check_target(output, replace=args.force)

    def deliver(request: PrivacyRequest, bundle: dict[str, Any]) -> None:
        data = export.render(bundle, args.format)
        if output is None:
            _to_stdout(data)
        else:
            write_private(output, data, replace=args.force)

    async def work(parts: Parts) -> dict[str, Any]:
        subject = await parts.requests.find(**_who(args))
        if args.output is None:
            req, path = await parts.requests.export_to_dir(subject, actor="cli", fmt=args.format)
            return {"request": req.id, "path": str(path), "due_at": req.due_at}
        req, bundle = await parts.requests.export(subject, actor="cli", deliver=deliver)
        return {"request": req.id, "path": args.output, "counts": export.counts(bundle)}

    result = with_parts(settings, work)
    if args.output != "-":
        emit(args, result, f"request {result['request']}: export written to {result['path']}")
    return 0


def _to_stdout(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()  # a closed or full stdout fails the request
    except OSError as exc:
        # Python flushes stdout once more at exit: point it at /dev/null to end quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise OutputError(f"cannot write the export to standard output: {exc.strerror}") from None


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise Invalid("erasure cannot be undone: pass --yes to confirm")
        answer = input("Erase this person everywhere? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing erased", file=sys.stderr)
            return 1

    async def work(parts: Parts) -> dict[str, Any]:
        subject = await parts.requests.find(**_who(args))
        req, _ = await parts.requests.erase(subject, actor="cli")
        done = await parts.store.request(req.id)
        return {"request": req.id, "detail": done.detail if done else {}}

    result = with_parts(settings, work)
    detail = result["detail"]
    emit(
        args,
        result,
        f"request {result['request']}: erased "
        + ", ".join(f"{v} {k}" for k, v in detail.items() if k != "ledger"),
    )
    return 0


def cmd_requests(args: argparse.Namespace, settings: Settings) -> int:
    reqs = with_parts(settings, lambda parts: parts.store.requests(limit=1000))
    rows = [
        {
            "id": r.id,
            "kind": r.kind,
            "status": r.status,
            "subject": r.subject,
            "received_at": r.received_at,
            "due_at": r.due_at,
            "completed_at": r.completed_at,
        }
        for r in reqs
    ]
    text = "\n".join(
        f"{r['id']}  {r['kind']:6}  {r['status']:9}  due {r['due_at']}  {r['subject']}"
        for r in rows
    )
    emit(args, {"requests": rows}, text or "no requests")
    return 0


def cmd_reapply(args: argparse.Namespace, settings: Settings) -> int:
    count = with_parts(settings, lambda parts: parts.requests.reapply())
    emit(args, {"reapplied": count}, f"{count} erasure(s) applied again")
    return 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    progress = Progress("deleting expired events")

    async def work(parts: Parts) -> Any:
        return await parts.retention.run(dry_run=args.dry_run, progress=progress)

    report = with_parts(settings, work)
    verb = "would delete" if args.dry_run else "deleted"
    emit(
        args,
        {"dry_run": args.dry_run, "counts": report.counts, "seconds": report.seconds},
        f"retention {verb}: " + ", ".join(f"{n} {k}" for k, n in report.counts.items()),
    )
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> Any:
        return await parts.audit.verify()

    verdict = with_parts(settings, work)
    text = (
        f"audit log intact: {verdict.rows} rows"
        + (f" ({verdict.unanchored} past the key store's anchor)" if verdict.unanchored else "")
        if verdict.intact
        else f"audit log BROKEN at row {verdict.broken_at}: {verdict.reason}"
    )
    emit(
        args,
        {
            "rows": verdict.rows,
            "intact": verdict.intact,
            "broken_at": verdict.broken_at,
            "reason": verdict.reason,
            "unanchored": verdict.unanchored,
        },
        text,
    )
    return 0 if verdict.intact else 1


def cmd_audit_reanchor(args: argparse.Namespace, settings: Settings) -> int:
    if not args.yes:
        raise Invalid(
            "this accepts that the audit log lost the rows past its head (a restore of older"
            " data): add --yes"
        )

    async def work(parts: Parts) -> Any:
        return await parts.audit.reanchor("cli")

    row = with_parts(settings, work)
    emit(args, {"anchored": row.seq, "anchor_was": row.detail["anchor_was"]},
         f"audit log anchored at row {row.seq} (it was at {row.detail['anchor_was']})")  # fmt: skip
    return 0
