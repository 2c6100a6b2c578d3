"""``ashiato leads duplicates | not-same | match-keys``: 名寄せ from the command line."""

from __future__ import annotations

import argparse
from typing import Any

from identity.duplicates import Confidence, Suggestion
from tracker.cli.common import Progress, Subparsers, emit, json_flag, with_parts
from tracker.settings import Settings
from tracker.wiring import Parts


def register_leads(sub: Subparsers) -> None:
    listing = sub.add_parser("duplicates", help="名寄せ: pairs of leads that are probably one "
                             "person, with the keys that matched")  # fmt: skip
    listing.add_argument(
        "--confidence",
        choices=[c.value for c in Confidence],
        default=Confidence.POSSIBLE.value,
        help="the least confidence listed (default possible: every pair)",
    )
    json_flag(listing)
    listing.set_defaults(run=cmd_duplicates)
    dismiss = sub.add_parser("not-same", help="mark a suggested pair as two people (kept)")
    dismiss.add_argument("lead")
    dismiss.add_argument("other")
    json_flag(dismiss)
    dismiss.set_defaults(run=cmd_not_same)
    keys = sub.add_parser("match-keys", help="compute the match keys of leads that lack them")
    json_flag(keys)
    keys.set_defaults(run=cmd_match_keys)


def pair_json(s: Suggestion) -> dict[str, Any]:
    return {"lead": s.lead, "other": s.other, "confidence": s.confidence.value,
            "matched": list(s.matched), "differs": list(s.differs)}  # fmt: skip


def cmd_duplicates(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> tuple[list[Suggestion], int]:
        found = await parts.matching.suggestions(least=Confidence(args.confidence))
        return found, await parts.matching.pending()

    found, pending = with_parts(settings, work)
    lines = [f"{s.confidence.value:<9} {s.lead}  {s.other}  {', '.join(s.matched)}"
             + (f" (differ: {', '.join(s.differs)})" if s.differs else "")
             for s in found]  # fmt: skip
    if not lines:
        lines = ["no duplicate suggestions"]
    if pending:
        lines.append(f"{pending} lead(s) without match keys: run `ashiato leads match-keys`")
    lines.append("merge: POST /api/v1/leads/LEAD/merge {other, reason}; "
                 "not the same: ashiato leads not-same LEAD OTHER")  # fmt: skip
    emit(args, {"pairs": [pair_json(s) for s in found], "pending": pending}, "\n".join(lines))
    return 0


def cmd_not_same(args: argparse.Namespace, settings: Settings) -> int:
    async def work(parts: Parts) -> tuple[str, str, int]:
        lead, other, at = await parts.matching.dismiss(args.lead, args.other, actor="cli")
        await parts.audit.record("cli", "duplicates.dismiss", lead, {"other": other})
        return lead, other, at

    lead, other, at = with_parts(settings, work)
    emit(args, {"lead": lead, "other": other, "by": "cli", "at": at},
         f"{lead} and {other} marked as two people: never suggested again")  # fmt: skip
    return 0


def cmd_match_keys(args: argparse.Namespace, settings: Settings) -> int:
    progress = Progress("match keys")

    async def work(parts: Parts) -> tuple[int, int]:
        keyed = await parts.matching.backfill(progress=progress)
        return keyed, await parts.matching.pending()

    keyed, pending = with_parts(settings, work)
    emit(args, {"keyed": keyed, "pending": pending},
         f"match keys computed for {keyed} lead(s); {pending} without")  # fmt: skip
    return 0
