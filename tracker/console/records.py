"""Legal's record pages: retention policy and runs, the audit log, the erasure ledger."""

from __future__ import annotations

from starlette.responses import Response

from privacy.retention import CLASSES
from tracker.console.web import Console, Denied, page

SHOWN = 200
MAX_FILTER = 200
RUNS_SHOWN = 10


@page("legal")
async def retention_page(console: Console) -> Response:
    services = console.services
    policy = services.retention.policy
    sites = sorted((s for s in services.sites.current().values() if console.scope.allows(s.id)),
                   key=lambda s: s.id)  # fmt: skip
    runs = await services.store.recent_audit(action_prefix="retention.run", limit=RUNS_SHOWN)
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
    action, actor, subject = (query.get(k, "").strip()[:MAX_FILTER]
                              for k in ("action", "actor", "subject"))  # fmt: skip
    if console.scope.limited:
        actor = console.actor  # the log is every site's: a site-limited user sees their own
    verdict = None
    if console.request.method == "POST":
        verdict = await console.services.audit.verify()
        await console.audit("audit.verify", "audit", intact=verdict.intact, rows=verdict.rows)
    store = console.services.store
    shown = await store.recent_audit(action_prefix=action, actor=actor, subject=subject,
                                     limit=SHOWN)  # fmt: skip
    return console.render("audit.html", rows=shown, total=await store.count_audit(),
                          verdict=verdict,
                          action=action, actor=actor, subject=subject)  # fmt: skip


@page("legal")
async def ledger_page(console: Console) -> Response:
    """The erasure ledger (lead ids of every site): not for a site-limited user."""
    if console.scope.limited:
        raise Denied("the erasure ledger covers every site")
    services = console.services
    entries = await services.keystore.ledger()
    marker = await services.store.erasure_marker()
    return console.render("ledger.html", entries=list(reversed(entries)), marker=marker)
