"""Webhook delivery from the transactional outbox: signed, retried, idempotent.

Each outbox row is one delivery with its own id (``Ashiato-Delivery``), which receivers
use to ignore a repeat: delivery is at least once, so a response lost on the way back
means a second attempt with the same id. The body is rendered when sent (personal data
is never stored in the outbox) and signed Stripe-style:
``Ashiato-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``,
and as Standard Webhooks sign (``webhook-id``/``-timestamp``/``-signature``,
``tracker.webhook_signing``).
Failures back off exponentially (1 s, 2 s, 4 s … capped at an hour). Deliveries run in
their own tasks with a deadline, so a slow receiver never slows ingest; and each
endpoint has its own lane (a few deliveries in flight at most, its own backoff after
failures), so a slow or silent receiver never holds back another's deliveries.
Destinations are checked and pinned to a checked address (``tracker.webhook_targets``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from privacy.crypto.primitives import InvalidCiphertext
from privacy.personal import PersonalData
from privacy.vault import Vault
from tracker.errors import Invalid, StorageError
from tracker.storage import Store
from tracker.storage.records import OutboxItem, Webhook
from tracker.webhook_signing import standard_headers
from tracker.webhook_targets import (
    Pinned,
    RefusedTarget,
    Resolver,
    TargetPolicy,
    pin,
    system_resolve,
    url_problem,
)

if TYPE_CHECKING:
    import httpx  # imported at the first delivery (with ssl, ~10 MiB a collector may not need)

log = logging.getLogger("ashiato.webhooks")

MAX_ATTEMPTS = 25
MAX_BACKOFF_S = 3600
TIMEOUT_S = 5.0
PER_ENDPOINT = 2  # deliveries in flight to one endpoint
CONCURRENCY = 16  # deliveries in flight overall
NEVER = 2**62


def signature(secret: bytes, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def register(
    store: Store, vault: Vault, url: str, events: Sequence[str], *, policy: TargetPolicy,
    now: int,
) -> tuple[Webhook, bytes]:  # fmt: skip
    """A new endpoint (its URL checked by ``policy``) and its signing secret, returned
    once and stored sealed. Used by the API and the console alike."""
    url = url.strip()
    problem = url_problem(url, policy)
    if problem is not None:
        raise Invalid(problem)
    hook_id, secret = "wh_" + secrets.token_hex(12), secrets.token_bytes(32)
    sealed = await vault.seal("webhooks", "secret", hook_id, secret)
    hook = Webhook(hook_id, url, tuple(dict.fromkeys(events)), sealed, now)
    await store.add_webhook(hook)
    return hook, secret


async def send_test(store: Store, hook: Webhook, *, now: int) -> OutboxItem:
    """A ``webhook.test`` delivery to ``hook`` (about no one), through the outbox like
    any other, so the delivery log shows how it went."""
    item = OutboxItem(secrets.token_hex(16), hook.id, "webhook.test", "", {"test": True},
                      now, next_attempt_at=now)  # fmt: skip
    await store.enqueue_delivery(item)
    return item


def backoff_ms(attempts: int, base: float = 1.0) -> int:
    return int(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S) * 1000)


@dataclass
class Lane:
    """One endpoint's share: deliveries in flight, and its backoff after failures (the
    endpoint rests; its queued items keep their attempt counts)."""

    busy: int = 0
    failures: int = 0
    paused_until: int = 0


class Deliverer:
    def __init__(
        self,
        store: Store,
        vault: Vault,
        personal: PersonalData,
        *,
        poll_interval: float = 0.5,
        retry_base: float = 1.0,
        timeout: float = TIMEOUT_S,
        policy: TargetPolicy | None = None,
        resolve: Resolver = system_resolve,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.vault, self.personal = store, vault, personal
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.timeout = timeout
        self.policy = policy or TargetPolicy()
        self._resolve = resolve
        self._now = now
        self._client: httpx.AsyncClient | None = None  # made at the first delivery
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lanes: dict[str, Lane] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}  # outbox item id -> its task

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ashiato-webhooks")

    def poke(self) -> None:
        """Something was enqueued: look now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            # trust_env=False: no HTTP(S)_PROXY from the environment; a delivery goes
            # straight to the address that was checked (webhook_targets.pin), never via a
            # third party.
            self._client = httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=False, trust_env=False,
                headers={"User-Agent": "ashiato-webhooks/1"},
            )  # fmt: skip
        return self._client

    async def idle(self) -> None:
        """Wait until the deliveries started so far have finished."""
        while self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except StorageError as exc:  # the database is away: say so once a round, briefly
                log.warning("webhook delivery round skipped", extra={"cause": str(exc)})
            except Exception:  # a broken receiver or database blip must not end the loop
                log.exception("webhook delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Start the due deliveries each endpoint's lane has room for, without waiting
        for them (see :meth:`idle`); return how many were started."""
        now = self._ms()
        hooks = await self.store.webhooks()
        started = 0
        for hook in hooks:
            lane = self._lanes.setdefault(hook.id, Lane())
            room = min(PER_ENDPOINT - lane.busy, CONCURRENCY - len(self._inflight))
            if room <= 0 or lane.paused_until > now:
                continue
            # Items in flight are still due: fetch past them, and skip any that was in
            # flight when the query began (it may have finished, delivered, meanwhile).
            busy = set(self._inflight)
            items = await self.store.due_outbox(now, limit=room + lane.busy, webhook_id=hook.id)
            for item in [i for i in items if i.id not in busy | self._inflight.keys()][:room]:
                self._launch(item, hook, lane)
                started += 1
        active = {hook.id for hook in hooks}
        self._lanes = {k: v for k, v in self._lanes.items() if k in active or v.busy}
        await self._retire_orphans(now, active)
        return started

    def _launch(self, item: OutboxItem, hook: Webhook, lane: Lane) -> None:
        lane.busy += 1
        task = asyncio.create_task(self._one(item, hook, lane), name=f"webhook-{item.id}")
        self._inflight[item.id] = task

    async def _one(self, item: OutboxItem, hook: Webhook, lane: Lane) -> None:
        delivered = False
        try:
            delivered = await self._deliver(item, hook)
        except Exception as exc:  # one bad item must not hold back the others
            log.warning("webhook delivery crashed",
                        extra={"delivery": item.id, "cause": exc.__class__.__name__})  # fmt: skip
            with contextlib.suppress(Exception):  # the database may be the cause
                await self.store.mark_failed(
                    item.id,
                    attempts=item.attempts + 1,
                    retry_at=self._ms() + backoff_ms(item.attempts + 1, self.retry_base),
                    error="internal error",
                )
        finally:
            lane.busy -= 1
            lane.failures = 0 if delivered else lane.failures + 1
            lane.paused_until = 0 if delivered else self._ms() + backoff_ms(
                lane.failures, self.retry_base)  # fmt: skip
            self._inflight.pop(item.id, None)
            self._wake.set()  # room in a lane: look again now

    async def _retire_orphans(self, now: int, active: set[str]) -> None:
        """Items of removed endpoints: keep the rows as a record, stop trying."""
        for item in await self.store.due_outbox(now, limit=CONCURRENCY):
            if item.webhook_id not in active and item.id not in self._inflight:
                await self.store.mark_failed(item.id, attempts=item.attempts + 1,
                                             retry_at=NEVER, error="webhook removed")  # fmt: skip

    async def _deliver(self, item: OutboxItem, hook: Webhook) -> bool:
        """One attempt; the destination is checked before any personal data is read."""
        attempts = item.attempts + 1
        error: str | None
        try:
            target = await pin(hook.url, self.policy, self._resolve)
        except RefusedTarget as exc:
            error = f"destination refused: {exc}"
        else:
            error = await self._send(item, hook, target)
        if error is None:
            await self.store.mark_delivered(item.id, self._ms(), attempts)
            return True
        retry_at = (
            self._ms() + backoff_ms(attempts, self.retry_base) if attempts < MAX_ATTEMPTS else NEVER
        )
        await self.store.mark_failed(item.id, attempts=attempts, retry_at=retry_at, error=error)
        log.warning(
            "webhook delivery failed",
            extra={"delivery": item.id, "webhook": hook.id, "attempt": attempts, "cause": error},
        )
        return False

    async def _send(self, item: OutboxItem, hook: Webhook, target: Pinned) -> str | None:
        """POST the signed body to the pinned address; the error, or None."""
        secret = await self.vault.open("webhooks", "secret", hook.id, hook.secret)
        body = orjson.dumps(await self.render(item))
        timestamp = int(self._now())
        headers = {
            "Content-Type": "application/json",
            "Ashiato-Event": item.type,
            "Ashiato-Delivery": item.id,
            "Ashiato-Signature": signature(secret, body, timestamp=timestamp),
        } | standard_headers(secret, item.id, timestamp, body)
        import httpx

        client = self._http()
        try:
            async with asyncio.timeout(self.timeout):  # httpx's timeout is per read, not whole
                response = await client.post(
                    target.url, content=body, headers=headers | target.headers,
                    extensions=target.extensions,
                )  # fmt: skip
        except (httpx.HTTPError, TimeoutError) as exc:
            return exc.__class__.__name__
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"

    async def render(self, item: OutboxItem) -> dict[str, Any]:
        data = dict(item.data)
        if item.type not in ("lead.erased", "webhook.test"):
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
