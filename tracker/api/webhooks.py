"""Webhook endpoints: register, list, remove (admin scope)."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from tracker.api import answers
from tracker.api.auth import require
from tracker.api.bodies import WebhookBody, read_body
from tracker.api.common import audit_read, json_response, now_ms, services_of
from tracker.api.fields import HOOK_ID
from tracker.errors import NotFound
from tracker.http_errors import BadRequest
from tracker.storage.records import Webhook
from tracker.webhook_targets import url_problem, webhook_policy


def hook_view(hook: Webhook) -> answers.Webhook:
    return answers.Webhook(hook.id, hook.url, list(hook.events), hook.created_at)


async def create(request: Request) -> Response:
    """Register an endpoint; the signing secret is in this response only."""
    key = await require(request, "admin")
    services = services_of(request)
    body = await read_body(request, WebhookBody)
    url = body.url.strip()
    problem = url_problem(url, webhook_policy(services.settings))
    if problem is not None:
        raise BadRequest(problem)
    hook_id, secret = "wh_" + secrets.token_hex(12), secrets.token_bytes(32)
    sealed = await services.vault.seal("webhooks", "secret", hook_id, secret)
    hook = Webhook(hook_id, url, tuple(dict.fromkeys(body.events)), sealed, now_ms())
    await services.store.add_webhook(hook)
    await audit_read(services, key, "webhook.create", hook_id)
    view = hook_view(hook)
    return json_response(answers.NewWebhook(view.id, view.url, view.events, view.created_at,
                                            secret=secret.hex()), 201)  # fmt: skip


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
