"""Webhook endpoints: register, list, remove (admin scope)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tracker.api import answers
from tracker.api.auth import require
from tracker.api.bodies import WebhookBody, read_body
from tracker.api.common import audit_read, json_response, now_ms, services_of
from tracker.api.fields import HOOK_ID
from tracker.errors import NotFound
from tracker.storage.records import Webhook
from tracker.webhook_signing import whsec
from tracker.webhook_targets import webhook_policy
from tracker.webhooks import register


def hook_view(hook: Webhook) -> answers.Webhook:
    return answers.Webhook(hook.id, hook.url, list(hook.events), hook.created_at)


async def create(request: Request) -> Response:
    """Register an endpoint; the signing secret is in this response only."""
    key = await require(request, "admin")
    services = services_of(request)
    body = await read_body(request, WebhookBody)
    policy = webhook_policy(services.settings)
    hook, secret = await register(
        services.store, services.vault, body.url, body.events, policy=policy, now=now_ms()
    )
    await audit_read(services, key, "webhook.create", hook.id)
    view = hook_view(hook)
    return json_response(answers.NewWebhook(view.id, view.url, view.events, view.created_at,
                                            secret=secret.hex(), signing_secret=whsec(secret)),
                         201)  # fmt: skip


async def listing(request: Request) -> Response:
    await require(request, "admin")
    hooks = await services_of(request).store.webhooks()
    return json_response(answers.Webhooks([hook_view(h) for h in hooks]))


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
