"""``ashiato scoring load | rescore | adjust`` and ``ashiato leads hot``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoring.document import parse
from scoring.handover import csv_row, hot_list, iso, to_csv
from scoring.rescoring import Report, rescore
from scoring.rules import RuleSet
from tracker.cli.common import Progress, Subparsers, emit, json_flag, now_ms, with_parts
from tracker.errors import Invalid, NotFound
from tracker.settings import Settings
from tracker.storage.records import Site
from tracker.wiring import Parts


def register(commands: Subparsers) -> None:
    group = commands.add_parser("scoring", help="lead scoring rules and rescoring")
    sub = group.add_subparsers(title="scoring commands", metavar="COMMAND")
    load = sub.add_parser("load", help="load a site's scoring rules (TOML)")
    load.add_argument("file")
    load.add_argument("--site", help="the site's key (may be left out when there is one site)")
    load.add_argument(
        "--dry-run", action="store_true", help="keep nothing; say who would change grade"
    )
    json_flag(load)
    load.set_defaults(run=cmd_load)
    again = sub.add_parser("rescore", help="replay history under the current rules")
    again.add_argument("--site", help="one site's key (default: every site with rules)")
    again.add_argument("--dry-run", action="store_true", help="write nothing; say what moves")
    json_flag(again)
    again.set_defaults(run=cmd_rescore)
    adjust = sub.add_parser("adjust", help="add points to a lead by hand (with a reason)")
    adjust.add_argument("lead")
    adjust.add_argument("--site", required=True)
    adjust.add_argument("--points", type=int, required=True)
    adjust.add_argument("--reason", required=True)
    adjust.add_argument("--axis", choices=["engagement", "fit"], default="engagement")
    json_flag(adjust)
    adjust.set_defaults(run=cmd_adjust)


def register_leads(sub: Subparsers) -> None:
    hot = sub.add_parser("hot", help="the hand-over list for sales (hot leads, by score)")
    hot.add_argument("--site", help="one site's key")
    hot.add_argument("--grade", choices=["hot", "warm", "cool"], default="hot")
    hot.add_argument("--limit", type=int, default=1000)
    hot.add_argument("--csv", action="store_true", help="CSV for SFA import (UTF-8 with BOM)")
    hot.add_argument("-o", "--output", help="write to this file instead of stdout")
    json_flag(hot)
    hot.set_defaults(run=cmd_hot)


async def site_by_key(parts: Parts, key: str | None) -> Site:
    """The site with ``key``; without one, the only site (a usage error if there are more)."""
    sites = await parts.store.list_sites()
    if key is None:
        if len(sites) != 1:
            raise Invalid("name the site: --site KEY")
        return sites[0]
    site = next((s for s in sites if s.key == key), None)
    if site is None:
        raise NotFound(f"no site has the key {key!r}")
    return site


def report_json(report: Report) -> dict[str, Any]:
    return {"site_id": report.site_id, "rules_version": report.version, "leads": report.leads,
            "grade_changes": report.grade_changes,
            "largest_moves": [{"lead": r.lead_id, "before": r.before.score,
                               "after": r.after.score, "grade_before": r.before.grade,
                               "grade_after": r.after.grade} for r in report.moves]}  # fmt: skip


def report_text(report: Report, *, dry_run: bool) -> str:
    verb = "would change" if dry_run else "changed"
    lines = [f"site {report.site_id} (rules v{report.version}): {report.leads} leads replayed,"
             f" {report.grade_changes} {verb} grade"]  # fmt: skip
    lines += [f"  {r.lead_id}: {r.before.score:.1f} ({r.before.grade}) -> {r.after.score:.1f}"
              f" ({r.after.grade})" for r in report.moves]  # fmt: skip
    return "\n".join(lines)


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read {args.file}: {exc.__class__.__name__}") from None
    doc = parse(text)

    async def work(parts: Parts) -> int:
        site = await site_by_key(parts, args.site)
        if args.dry_run:
            current = await parts.scoring.rules(site.id)
            version = (current.rules.version if current else 0) + 1
            rules = RuleSet(doc, site_id=site.id, version=version)
            report = await rescore(parts.scoring, site.id, dry_run=True, rules=rules,
                                   progress=Progress("replaying"))  # fmt: skip
            emit(args, report_json(report), report_text(report, dry_run=True))
            return 0
        version = await parts.scoring.put_rules(site.id, doc, actor="cli")
        total, done = await parts.store.count_leads_on_site(site.id, version)
        emit(args, {"site": site.key, "version": version, "rules": len(doc.rule),
                    "leads_to_rescore": total - done},
             f"site {site.key}: rules v{version} loaded ({len(doc.rule)} rules); {total - done}"
             f" leads are scored under older rules: run `ashiato scoring rescore --site"
             f" {site.key}`")  # fmt: skip
        return 0

    return with_parts(settings, work)


def cmd_rescore(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> int:
        sites = await parts.scoring.refresh()
        ids = [(await site_by_key(parts, args.site)).id] if args.site else sorted(sites)
        reports = []
        for site_id in ids:
            report = await rescore(parts.scoring, site_id, dry_run=args.dry_run,
                                   progress=Progress(f"site {site_id}"))  # fmt: skip
            reports.append(report)
        text = "\n".join(report_text(r, dry_run=args.dry_run) for r in reports)
        emit(args, {"sites": [report_json(r) for r in reports]}, text or "no rules")
        return 0

    return with_parts(settings, work)


def cmd_adjust(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> int:
        site = await site_by_key(parts, args.site)
        root = await parts.store.resolve_lead(args.lead)
        if root is None:
            raise NotFound("no such lead")
        hot = await parts.scoring.adjust(root, site.id, points=args.points, reason=args.reason,
                                         actor="cli", axis=args.axis)  # fmt: skip
        emit(
            args,
            {"lead": root, "points": args.points, "hot_sent": hot},
            f"{root}: {args.points:+d} ({args.reason})",
        )
        return 0

    return with_parts(settings, work)


def cmd_hot(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> int:
        site = await site_by_key(parts, args.site) if args.site else None
        listed = await hot_list(parts.scoring, site_id=site.id if site else None,
                                grade=args.grade, limit=args.limit, now=now_ms())  # fmt: skip
        keys = {s.id: s.key for s in await parts.store.list_sites()}
        rows, items = [], []
        for item in listed:
            lead = await parts.store.lead(item.lead_id)
            if lead is None:
                continue
            person = (await parts.personal.read(lead)).as_dict()
            rows.append(csv_row(item, keys.get(item.site_id, ""), person, lead))
            items.append({"lead": item.lead_id, "score": item.score, "grade": item.grade,
                          "fit_grade": item.fit_grade, "site": keys.get(item.site_id)})  # fmt: skip
        await parts.audit.record("cli", "leads.hot", "*", {"leads": [i["lead"] for i in items]})
        if args.csv:
            write(args.output, to_csv(rows))
        else:
            text = "\n".join(f"{r[0]}  {r[5]:8.1f}  {r[6]:4}  {r[8]}  {r[1]}  {r[3]}"
                             for r in rows) or f"no {args.grade} leads"  # fmt: skip
            emit(args, {"leads": items, "at": iso(now_ms())}, text)
        return 0

    return with_parts(settings, work)


def write(path: str | None, data: bytes) -> None:
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(path).write_bytes(data)
