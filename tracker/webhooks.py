"""Webhook delivery from the transactional outbox: signed, retried, idempotent.

Each outbox row is one delivery with its own id (``Ashiato-Delivery``), which receivers
use to ignore a repeat: delivery is at least once, so a response lost on the way back
means a second attempt with the same id. The body is rendered when sent (personal data
is never stored in the outbox) and signed Stripe-style:
``Ashiato-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
Failures back off exponentially (1 s, 2 s, 4 s … capped at an hour). Deliveries run in
their own task with timeouts and bounded concurrency: a slow receiver never slows
ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from privacy.crypto import InvalidCiphertext
from privacy.personal import PersonalData
from privacy.vault import Vault
from tracker.storage import Store
from tracker.storage.records import OutboxItem, Webhook

log = logging.getLogger("ashiato.webhooks")

MAX_ATTEMPTS = 25
MAX_BACKOFF_S = 3600
TIMEOUT_S = 5.0
CONCURRENCY = 8


def signature(secret: bytes, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_ms(attempts: int, base: float = 1.0) -> int:
    return int(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S) * 1000)


class Deliverer:
    def __init__(
        self,
        store: Store,
        vault: Vault,
        personal: PersonalData,
        *,
        poll_interval: float = 0.5,
        retry_base: float = 1.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.vault, self.personal = store, vault, personal
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self._now = now
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT_S, follow_redirects=False, headers={"User-Agent": "ashiato-webhooks/1"}
        )
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ashiato-webhooks")

    def poke(self) -> None:
        """Something was enqueued: look now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # a broken receiver or database blip must not end the loop
                log.exception("webhook delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def deliver_due(self) -> int:
        items = await self.store.due_outbox(self._ms(), limit=CONCURRENCY * 4)
        hooks = {h.id: h for h in await self.store.webhooks()}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(item: OutboxItem) -> None:
            async with gate:
                try:
                    await self._deliver(item, hooks.get(item.webhook_id))
                except Exception:  # one bad item must not hold back the others
                    log.exception("webhook delivery crashed", extra={"delivery": item.id})
                    await self.store.mark_failed(
                        item.id,
                        attempts=item.attempts + 1,
                        retry_at=self._ms() + backoff_ms(item.attempts + 1, self.retry_base),
                        error="internal error",
                    )

        await asyncio.gather(*(one(item) for item in items))
        return len(items)

    async def _deliver(self, item: OutboxItem, hook: Webhook | None) -> None:
        attempts = item.attempts + 1
        if hook is None:  # removed since: keep the row as a record, stop trying
            await self.store.mark_failed(
                item.id, attempts=attempts, retry_at=2**62, error="webhook removed"
            )
            return
        secret = await self.vault.open("webhooks", "secret", hook.id, hook.secret)
        body = orjson.dumps(await self.render(item))
        timestamp = int(self._now())
        headers = {
            "Content-Type": "application/json",
            "Ashiato-Event": item.type,
            "Ashiato-Delivery": item.id,
            "Ashiato-Signature": signature(secret, body, timestamp=timestamp),
        }
        try:
            response = await self._client.post(hook.url, content=body, headers=headers)
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = exc.__class__.__name__
        if error is None:
            await self.store.mark_delivered(item.id, self._ms(), attempts)
            return
        retry_at = (
            self._ms() + backoff_ms(attempts, self.retry_base) if attempts < MAX_ATTEMPTS else 2**62
        )
        await self.store.mark_failed(item.id, attempts=attempts, retry_at=retry_at, error=error)
        log.warning(
            "webhook delivery failed",
            extra={"delivery": item.id, "attempt": attempts, "cause": error},
        )

    async def render(self, item: OutboxItem) -> dict[str, Any]:
        data = dict(item.data)
        if item.type != "lead.erased":
            data["lead_data"] = await self._lead_data(item.data.get("lead", item.lead_id))
        return {"id": item.id, "type": item.type, "created_at": item.created_at, "data": data}

    async def _lead_data(self, lead_id: str) -> dict[str, Any] | None:
        lead = await self.store.lead(lead_id)
        if lead is None:
            return None
        try:
            person = await self.personal.read(lead)
        except InvalidCiphertext:
            return None  # erased meanwhile
        return {
            "id": lead.id,
            **person.as_dict(),
            "first_touch": lead.first_touch,
            "last_touch": lead.last_touch,
        }

    def _ms(self) -> int:
        return int(self._now() * 1000)
