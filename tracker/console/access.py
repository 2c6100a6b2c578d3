"""Admin's access pages: API keys (secret shown once) and webhooks (secret shown once,
test-send, the delivery log, redelivery). The same functions as the API and the CLI."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from tracker.api.auth import SCOPES, new_api_key
from tracker.api.fields import EVENT_TYPES
from tracker.console.web import Console, page
from tracker.errors import NotFound
from tracker.scope import site_ids
from tracker.storage.records import Webhook
from tracker.webhook_targets import webhook_policy
from tracker.webhooks import register, send_test

DELIVERIES_SHOWN = 100


@page("admin")
async def keys_page(console: Console) -> Response:
    store = console.services.store
    secret = None
    if console.request.method == "POST":
        sites = await site_ids(store, console.form.getlist("site"))
        record, secret = new_api_key(console.form.get("name"), console.form.getlist("scope"),
                                     now=console.clock.now_ms, sites=sites)  # fmt: skip
        await store.add_api_key(record)
        await console.audit("apikey.create", record.id, sites=list(sites))
    keys = sorted(await store.list_api_keys(), key=lambda k: (k.revoked_at is not None,
                                                              -k.created_at))  # fmt: skip
    return console.render("keys.html", keys=keys, scopes=SCOPES, secret=secret,
                          **await site_choice(console))  # fmt: skip


async def site_choice(console: Console) -> dict[str, Any]:
    """What a form limiting a key or user to sites shows: the sites, and their names."""
    sites = await console.services.store.list_sites()
    return {"sites": [s for s in sites if not s.settings.removed_at],
            "site_names": {s.id: s.name for s in sites}}  # fmt: skip


@page("admin")
async def key_revoke(console: Console) -> Response:
    key_id = console.request.path_params["key_id"]
    if len(key_id) > 64 or not await console.services.store.revoke_api_key(
        key_id, console.clock.now_ms
    ):
        raise NotFound("no active API key with that id")
    await console.audit("apikey.revoke", key_id)
    return RedirectResponse("/admin/keys", 303)


@page("admin")
async def webhooks_page(console: Console) -> Response:
    services = console.services
    created, secret = None, None
    if console.request.method == "POST":
        events = console.form.getlist("event") or list(EVENT_TYPES)
        created, raw = await register(
            services.store, services.vault, console.form.get("url"),
            [e for e in events if e in EVENT_TYPES], policy=webhook_policy(services.settings),
            now=console.clock.now_ms,
        )  # fmt: skip
        secret = raw.hex()  # as the API answers it
        await console.audit("webhook.create", created.id)
    hooks = await services.store.webhooks()
    return console.render("webhooks.html", hooks=hooks, events=EVENT_TYPES, created=created,
                          secret=secret)  # fmt: skip


async def _hook(console: Console) -> Webhook:
    hook_id = console.request.path_params["hook_id"]
    hook = await console.services.store.webhook(hook_id) if len(hook_id) < 64 else None
    if hook is None or hook.disabled_at is not None:
        raise NotFound("webhook not found")
    return hook


@page("admin")
async def webhook_page(console: Console) -> Response:
    hook = await _hook(console)
    deliveries = await console.services.store.deliveries_of(hook.id, limit=DELIVERIES_SHOWN)
    return console.render("webhook.html", hook=hook, deliveries=deliveries)


@page("admin")
async def webhook_action(console: Console) -> Response:
    """test-send, redeliver one delivery, or remove the endpoint."""
    services, hook = console.services, await _hook(console)
    action, now = console.request.path_params["action"], console.clock.now_ms
    if action == "test":
        item = await send_test(services.store, hook, now=now)
        await console.audit("webhook.test", hook.id, delivery=item.id)
    elif action == "redeliver":
        delivery = console.form.get("delivery")
        ours = {d.id for d in await services.store.deliveries_of(hook.id, limit=10_000)}
        if delivery not in ours or not await services.store.redeliver(delivery, now):
            raise NotFound("delivery not found")
        await console.audit("webhook.redeliver", hook.id, delivery=delivery)
    elif action == "remove":
        await services.store.disable_webhook(hook.id, now)
        await console.audit("webhook.delete", hook.id)
        return RedirectResponse("/admin/webhooks", 303)
    else:
        raise NotFound("no such action")
    services.webhooks.poke()
    return RedirectResponse(f"/admin/webhooks/{hook.id}", 303)
