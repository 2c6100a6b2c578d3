"""The home page, for every role: what is running, and what needs attention."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from privacy import keys
from privacy.dsr import RequestStatus
from tracker.console.web import Console, page
from tracker.errors import StorageError
from tracker.routes import readiness
from tracker.scope import sees_request
from tracker.services import Services
from tracker.storage.records import PrivacyRequest, Webhook

RECENT_DELIVERIES = 20


@dataclass(frozen=True, slots=True)
class FailingHook:
    hook: Webhook
    failing: int
    last_error: str


async def overdue_requests(services: Services, now: int) -> list[PrivacyRequest]:
    open_ = [r for r in await services.store.requests(limit=1000)
             if r.status == RequestStatus.RECEIVED]  # fmt: skip
    return sorted((r for r in open_ if r.due_at < now), key=lambda r: r.due_at)


async def failing_webhooks(services: Services) -> list[FailingHook]:
    """Endpoints whose latest delivery has not gone through."""
    failing = []
    for hook in await services.store.webhooks():
        recent = await services.store.deliveries_of(hook.id, limit=RECENT_DELIVERIES)
        bad = [d for d in recent if d.delivered_at is None and d.last_error]
        if recent and recent[0] in bad:
            failing.append(FailingHook(hook, len(bad), bad[0].last_error or ""))
    return failing


async def key_problem(services: Services) -> str:
    try:
        status = await keys.status(services.parts.keyring.keyring, services.keystore)
    except StorageError:
        return "key store unreachable"
    if status.missing:
        return "keys missing from the key file"
    return status.problem


@page()
async def home(console: Console) -> Response:
    """A site-limited user's figures are of their sites (requests about people seen
    there); the webhooks, every site's, are not theirs."""
    services, clock, scope = console.services, console.clock, console.scope
    ready = await readiness(services)
    open_requests = [r for r in await services.store.requests(limit=1000)
                     if r.status == RequestStatus.RECEIVED
                     and await sees_request(services.store, scope, r.subject)]  # fmt: skip
    overdue = await overdue_requests(services, clock.now_ms)
    today = await services.store.count_events_since(clock.start_of_today(), sites=scope.ids)
    return console.render(
        "home.html",
        events_today=today,
        queue=services.writer.waiting,
        ready=ready,
        is_ready=all(v in ("ok", "loaded") for v in ready.values()),
        key_problem=await key_problem(services),
        open_requests=len(open_requests),
        overdue=[r for r in overdue if await sees_request(services.store, scope, r.subject)],
        failing=[] if scope.limited else await failing_webhooks(services),
        sites=len([s for s in services.sites.current().values() if scope.allows(s.id)]),
    )
