"""``create_app(settings)``: the ASGI application and the lifespan that owns its parts."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from privacy import consent
from tracker import collect, logs, routes, useragent
from tracker.accesslog import AccessLog
from tracker.assets import Asset
from tracker.cors import cors_headers
from tracker.errors import Refused, StorageError
from tracker.http_errors import HTTPError, answer
from tracker.ingest import ClientInfo
from tracker.metrics import Metrics
from tracker.services import Limits, Services
from tracker.settings import Settings
from tracker.sites import SiteDirectory
from tracker.storage.records import WriteItem, WriteResult
from tracker.webhook_targets import webhook_policy
from tracker.webhooks import Deliverer
from tracker.wiring import open_parts
from tracker.write_keys import WriteKeyDirectory
from tracker.writer import Writer

log = logging.getLogger("ashiato.app")


class Collector:
    """The outermost ASGI app: ``POST /collect`` straight to its handler, the rest to
    Starlette (see ``tracker.collect`` for why the hot path skips the router)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def state(self) -> State:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            logs.new_request_id()  # every log line of this request carries it
        if scope["type"] == "http" and scope["path"] == "/collect" and scope["method"] == "POST":
            await collect.collect_asgi(scope, receive, send, self.app.state.services)
        elif scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.app(scope, receive, self._counting(send))
        else:
            await self.app(scope, receive, send)

    def takes_raw_beacon(self, headers: Mapping[str, str]) -> bool:
        """Whether ``tracker.http`` may answer this ``POST /collect`` itself, after
        reading the whole body (``collect_raw``): a declared length within the limit. Not
        there when the access log wraps this app, so every request is logged."""
        services: Services | None = getattr(self.app.state, "services", None)
        declared = headers.get("content-length", "")
        limit = services.settings.max_body_bytes if services is not None else -1
        return declared.isdigit() and int(declared) <= limit

    async def collect_raw(self, client: ClientInfo, body: bytes) -> collect.Reply:
        logs.new_request_id()
        return await collect.collect_raw(client, body, self.app.state.services)

    def _counting(self, send: Send) -> Send:
        """``send``, counting the API answer's status in ``/metrics``."""
        responses = self.app.state.services.metrics.api_responses

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                responses[message["status"]] += 1
            await send(message)

        return counted


GC_FIRST_THRESHOLD = 50_000


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path.

    Requests free almost everything by reference counting, yet at thousands of requests a
    second Python's default thresholds (700 allocations) ran a collection every few
    requests, and a full one often, each walking the long-lived caches (the visitor
    clock's ~12,500 entries, the data-key and user-agent caches): those passes were the
    collector's p99 (33 ms → 13 ms in `bench/collector.py`) and cost ~15 % throughput.
    Objects made at start are frozen out of collection; collections come ~70x less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_FIRST_THRESHOLD, 20, 100)


def create_app(settings: Settings) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await start(settings)
        app.state.services = services
        tune_gc()
        log.info("collector ready", extra={"database": _backend(settings)})
        try:
            yield
        finally:
            await stop(services)

    app = Starlette(
        routes=routes.routes(with_demo=settings.demo),
        lifespan=lifespan,
        exception_handlers={
            HTTPError: _http_error,
            Refused: _http_error,
            StorageError: _storage_error,
            HTTPException: _starlette_error,
            Exception: _unexpected,
        },
    )
    app.router.redirect_slashes = False  # an odd path is a 404, not a redirect
    collector = Collector(app)
    return collector if not settings.access_log else AccessLog(collector)


async def start(settings: Settings) -> Services:
    parts = await open_parts(settings)
    metrics = Metrics()
    sites = SiteDirectory(parts.store, ttl=settings.site_cache_seconds)
    await sites.refresh()
    store = parts.store

    async def write_batch(items: Sequence[WriteItem]) -> WriteResult:
        result = await store.write_batch(items, consent.Rules(sites.modes))
        parts.scoring.notice(items)  # scored after this commit, never before it
        return result

    writer = Writer(
        write_batch,
        metrics=metrics,
        batch_max=settings.batch_max_events,
        interval=settings.batch_interval_ms / 1000,
        queue_max=settings.queue_max_events,
    )
    writer.start()
    tag = Asset.load("t.js", "application/javascript; charset=utf-8")
    useragent.warm_up()
    webhooks = Deliverer(parts.store, parts.vault, parts.personal,
                         retry_base=settings.webhook_retry_seconds,
                         timeout=settings.webhook_timeout_seconds,
                         policy=webhook_policy(settings))  # fmt: skip
    webhooks.start()
    await parts.scoring.refresh()
    parts.scoring.start()
    unanchored = await parts.audit.catch_up()
    if unanchored:
        log.warning("audit rows anchored at start", extra={"rows": unanchored})
    reapplied = await parts.requests.reapply()
    if reapplied:
        log.warning("erasure ledger re-applied", extra={"entries": reapplied})
    limits = Limits.from_settings(settings)
    write_keys = WriteKeyDirectory(parts.store, ttl=settings.site_cache_seconds)
    services = Services(settings, parts, sites, writer, metrics, tag, webhooks, limits,
                        write_keys)  # fmt: skip
    services.background = [
        asyncio.create_task(retention_job(services), name="ashiato-retention"),
        asyncio.create_task(match_keys_job(services), name="ashiato-match-keys"),
    ]
    if settings.rollups:
        services.background.append(
            asyncio.create_task(rollups_job(services), name="ashiato-rollups")
        )
    return services  # fmt: skip


async def stop(services: Services) -> None:
    """Flush every accepted event before the process goes away (SIGTERM lands here)."""
    waiting = services.writer.waiting
    for task in services.background:
        task.cancel()
    await asyncio.gather(*services.background, return_exceptions=True)
    await services.writer.close()
    if services.settings.rollups:
        with contextlib.suppress(Exception):  # the database may be away: the next start heals
            await services.parts.store.catch_up_rollups()
    await services.parts.scoring.close()
    await services.webhooks.close()
    await services.parts.close()
    log.info("collector stopped", extra={"flushed_events": waiting})


async def retention_job(services: Services) -> None:
    """Run retention every ASHIATO_RETENTION_INTERVAL_SECONDS (0: never), first after one
    interval, so a restart does not start with a burst of deletes."""
    interval = services.settings.retention_interval_seconds
    if interval <= 0:
        return
    metrics = services.metrics
    while True:
        await asyncio.sleep(interval)
        metrics.retention_running = 1
        try:
            report = await services.retention.run()
        except Exception:
            log.exception("retention run failed")
        else:
            metrics.retention_runs += 1
            metrics.retention_deleted.update(report.counts)
            log.info("retention run", extra={"counts": report.counts, "seconds": report.seconds})
        finally:
            metrics.retention_running = 0


ROLLUP_INTERVAL_S = 1.0


async def rollups_job(services: Services) -> None:
    """Count what ingest committed into the dashboard's roll-ups, every second (one
    transaction per few thousand page views, none beside ingest's own commits)."""
    store = services.parts.store
    while True:
        await asyncio.sleep(ROLLUP_INTERVAL_S)
        try:
            await store.catch_up_rollups()
        except StorageError as exc:  # locked a moment, or away: it resumes
            level = logging.DEBUG if "locked" in str(exc) else logging.WARNING
            log.log(level, "roll-ups round skipped", extra={"cause": str(exc)})
        except Exception:  # a bug must not end the job either
            log.exception("roll-ups round failed")


async def match_keys_job(services: Services) -> None:
    """名寄せ: once at start, key the leads that lack match keys of the current version
    (after an upgrade, or a write interrupted between a lead's traits and its keys)."""
    try:
        keyed = await services.parts.matching.backfill()
    except Exception as exc:
        log.warning("match keys not computed", extra={"cause": exc.__class__.__name__})
        return
    if keyed:
        log.info("match keys computed", extra={"leads": keyed})


def _backend(settings: Settings) -> str:
    return settings.database_url.split(":", 1)[0]


async def _http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error, or a domain refusal (404, 409, 400) given its status here."""
    assert isinstance(exc, HTTPError | Refused)
    status, message, headers = answer(exc)
    headers = dict(headers)
    if request.url.path == "/collect":
        headers |= cors_headers(request.app.state.services, request.headers.get("origin"))
    if request.url.path in collect.COLLECTOR_PATHS:  # as their 2xx are: API answers are not
        request.app.state.services.metrics.responses[status] += 1
    return JSONResponse({"error": message}, status, headers=headers)


async def _storage_error(request: Request, exc: Exception) -> Response:
    """The database (or key store) is unreachable, locked or full: a moment's fault, so
    503 with Retry-After as the collector answers, and one log line naming the cause
    (StorageError messages carry no data), no traceback."""
    log.warning("storage unavailable", extra={"path": request.url.path, "cause": str(exc)})
    if request.url.path in collect.COLLECTOR_PATHS:  # as in _http_error
        request.app.state.services.metrics.responses[503] += 1
    return JSONResponse({"error": "database unavailable"}, 503, headers={"Retry-After": "2"})


async def _starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return JSONResponse({"error": "internal error"}, 500)


def app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory`` and for worker processes: settings from env."""
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    return create_app(settings)
