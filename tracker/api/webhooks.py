"""Webhook endpoints: register, list, remove (admin scope)."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from tracker.api.auth import require
from tracker.api.common import (
    HOOK_ID,
    audit_read,
    json_body,
    json_response,
    now_ms,
    services_of,
    text_field,
)
from tracker.errors import BadRequest, NotFound
from tracker.storage.records import Webhook
from tracker.webhook_targets import url_problem, webhook_policy

EVENT_TYPES = ("lead.created", "lead.identified", "lead.updated", "lead.merged",
               "lead.unmerged", "lead.erased")  # fmt: skip


def hook_view(hook: Webhook) -> dict[str, object]:
    return {"id": hook.id, "url": hook.url, "events": list(hook.events),
            "created_at": hook.created_at}  # fmt: skip


async def create(request: Request) -> Response:
    """Register an endpoint; the signing secret is in this response only."""
    key = await require(request, "admin")
    services = services_of(request)
    data = await json_body(request)
    url = text_field(data, "url", limit=2000)
    problem = url_problem(url, webhook_policy(services.settings))
    if problem is not None:
        raise BadRequest(problem)
    events = data.get("events", list(EVENT_TYPES))
    if not isinstance(events, list) or not events or not all(e in EVENT_TYPES for e in events):
        raise BadRequest(f"events must be a list drawn from {', '.join(EVENT_TYPES)}")
    hook_id, secret = "wh_" + secrets.token_hex(12), secrets.token_bytes(32)
    sealed = await services.vault.seal("webhooks", "secret", hook_id, secret)
    hook = Webhook(hook_id, url, tuple(dict.fromkeys(events)), sealed, now_ms())
    await services.store.add_webhook(hook)
    await audit_read(services, key, "webhook.create", hook_id)
    return json_response(hook_view(hook) | {"secret": secret.hex()}, 201)


async def listing(request: Request) -> Response:
    await require(request, "admin")
    hooks = await services_of(request).store.webhooks()
    return json_response({"webhooks": [hook_view(h) for h in hooks]})


async def delete(request: Request) -> Response:
    key = await require(request, "admin")
    services = services_of(request)
    hook_id = request.path_params["hook_id"]
    if not HOOK_ID.fullmatch(hook_id) or not await services.store.disable_webhook(
        hook_id, now_ms()
    ):
        raise NotFound("webhook not found")
    await audit_read(services, key, "webhook.delete", hook_id)
    return Response(status_code=204)


async def collection(request: Request) -> Response:
    """``/api/v1/webhooks``: GET lists, POST registers (one route, so 405 says both)."""
    return await (create(request) if request.method == "POST" else listing(request))
