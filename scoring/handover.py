"""The hand-over to sales: leads by grade now, and the CSV an SFA imports.

A lead's listed score is its score when last computed, decayed to now: every entry
decays at the same rate, so that is exact (``scoring.grades``), and no job rewrites it.
The CSV is UTF-8 with a byte-order mark (Excel in Japan opens it as UTF-8, not
Shift_JIS) and formula-safe: a text cell that a spreadsheet would run as a formula
(``= + - @``, tab, carriage return) starts with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scoring.service import Scoring

PREFILTER = 10_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("lead", "email", "name", "company", "phone", "score", "grade", "fit",
               "fit_grade", "site", "first_touch_at", "first_touch_source",
               "first_touch_medium", "first_touch_campaign", "first_touch_page",
               "last_touch_at", "last_touch_source", "last_touch_medium",
               "last_touch_campaign", "last_touch_page")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Listed:
    lead_id: str
    site_id: int
    score: float
    grade: str
    fit: int
    fit_grade: str


async def hot_list(
    scoring: Scoring, *, site_id: int | None, grade: str, limit: int, now: int,
    allowed: Collection[int] | None = None,
) -> list[Listed]:  # fmt: skip
    """Unmerged leads whose grade is ``grade`` now, highest score first (a lead scored
    on several sites: where it scores highest); of ``allowed`` sites only, if given."""
    sites = await scoring.refresh()
    if site_id is not None:
        sites = {k: v for k, v in sites.items() if k == site_id}
    if allowed is not None:
        sites = {k: v for k, v in sites.items() if k in allowed}
    if not sites:
        return []
    floor = {"hot": "hot_from", "warm": "warm_from"}.get(grade)
    at_least = min(getattr(i.rules.grading, floor) for i in sites.values()) if floor else -1e300
    states = await scoring.store.scored_leads(site_id=site_id, at_least=at_least,
                                              limit=PREFILTER)  # fmt: skip
    best: dict[str, Listed] = {}
    for state in states:
        info = sites.get(state.site_id)
        if info is None:
            continue
        g = info.rules.grading
        score = round(g.decay(state.score, state.at, now), 6)
        listed = Listed(state.lead_id, state.site_id, score, g.grade(score), state.fit,
                        g.fit_grade(state.fit))  # fmt: skip
        if listed.grade == grade and (
            state.lead_id not in best or best[state.lead_id].score < score
        ):
            best[state.lead_id] = listed
    return sorted(best.values(), key=lambda x: (-x.score, x.lead_id))[:limit]


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def iso(ms: Any) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def touch_cells(touch: Mapping[str, Any] | None) -> list[Any]:
    t = touch or {}
    return [iso(t.get("at")), t.get("utm_source") or "", t.get("utm_medium") or "",
            t.get("utm_campaign") or "", t.get("landing_page") or ""]  # fmt: skip


def csv_row(listed: Listed, site_key: str, person: Mapping[str, Any], lead: Any) -> list[Any]:
    return [
        listed.lead_id, person.get("email") or "", person.get("name") or "",
        person.get("company") or "", person.get("phone") or "", listed.score, listed.grade,
        listed.fit, listed.fit_grade, site_key, *touch_cells(lead.first_touch),
        *touch_cells(lead.last_touch),
    ]  # fmt: skip


def to_csv(rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a BOM, CRLF line ends (as Excel writes), formula-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([safe_cell(v) for v in r])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")
