"""Legal's record pages: retention policy and runs, the audit log, the erasure ledger."""

from __future__ import annotations

from starlette.responses import Response

from privacy.retention import CLASSES
from tracker.console.web import Console, page
from tracker.storage.records import AuditRow

SHOWN = 200
RUNS_SHOWN = 10


def matches(row: AuditRow, action: str, actor: str, subject: str) -> bool:
    return (
        (not action or row.action.startswith(action))
        and (not actor or row.actor == actor)
        and (not subject or row.subject == subject)
    )


@page("legal")
async def retention_page(console: Console) -> Response:
    services = console.services
    policy = services.retention.policy
    sites = sorted(services.sites.current().values(), key=lambda s: s.id)
    rows = await services.audit.rows()
    runs = [r for r in reversed(rows) if r.action == "retention.run"][:RUNS_SHOWN]
    return console.render(
        "retention.html",
        classes=CLASSES,
        defaults=policy.days,
        sites=[(s, policy.for_site(s)) for s in sites],
        runs=runs,
    )


@page("legal")
async def audit_page(console: Console) -> Response:
    query = console.request.query_params
    action, actor = query.get("action", "").strip(), query.get("actor", "").strip()
    subject = query.get("subject", "").strip()
    verdict = None
    if console.request.method == "POST":
        verdict = await console.services.audit.verify()
        await console.audit("audit.verify", "audit", intact=verdict.intact, rows=verdict.rows)
    rows = await console.services.audit.rows()
    shown = [r for r in reversed(rows) if matches(r, action, actor, subject)][:SHOWN]
    return console.render("audit.html", rows=shown, total=len(rows), verdict=verdict,
                          action=action, actor=actor, subject=subject)  # fmt: skip


@page("legal")
async def ledger_page(console: Console) -> Response:
    services = console.services
    entries = await services.keystore.ledger()
    marker = await services.store.erasure_marker()
    return console.render("ledger.html", entries=list(reversed(entries)), marker=marker)
