"""The whole HTTP surface on one screen."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from privacy.keys import mismatch
from tracker import api, assets, collect, cors, demo, disclosure, pixel, segment
from tracker.errors import StorageError
from tracker.services import Services

log = logging.getLogger("ashiato.app")


async def tag(request: Request) -> Response:
    services: Services = request.app.state.services
    return services.tag.response(request)


async def stub_script(request: Request) -> Response:
    """``/s.js``: the snippet's queue stub, for pages whose CSP allows no inline script."""
    return assets.script("s.js").response(request)


async def cmp_script(request: Request) -> Response:
    """``/cmp.js``: the CMP adapter, on sites that read a consent management platform."""
    return assets.script("cmp.js").response(request)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = await readiness(request.app.state.services)
    ready = all(v in ("ok", "loaded") for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", **checks},
                        200 if ready else 503)  # fmt: skip


async def readiness(services: Services) -> dict[str, str]:
    """What ``/readyz`` checks (and the console's home page shows)."""
    checks = {"database": "ok", "keystore": "ok", "keys": "loaded"}
    for name, part in (("database", services.store), ("keystore", services.keystore)):
        try:
            await part.ping()
        except StorageError:
            checks[name] = "unreachable"
    if checks["keystore"] == "ok" and await _wrong_master_key(services):
        checks["keys"] = "wrong master key (ASHIATO_MASTER_KEY_FILE): see the server log"
    return checks


async def _wrong_master_key(services: Services) -> bool:
    """The cheap check (one row): the full one, per KEK, ran at start."""
    try:
        state = await services.keystore.keyring_state()
    except StorageError:
        return False  # reported as unreachable by the next ping
    problem = mismatch(services.parts.keyring.keyring, state, {})
    if problem is not None:
        log.error("not ready: wrong master key: %s", problem)
    return problem is not None


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    return PlainTextResponse(
        services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


def content_security_policy(nonce: str) -> str:
    """Same-origin scripts, plus the page's own inline script and style by nonce; no
    plugins, frames, foreign forms or base tags. Whatever slips into a page cannot run."""
    return (
        f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def html_page(body: str, nonce: str, headers: dict[str, str] | None = None) -> Response:
    """Every HTML answer goes through here, so every one carries the CSP."""
    security = {
        "Content-Security-Policy": content_security_policy(nonce),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    return HTMLResponse(body, headers=security | (headers or {}))


async def demo_page(request: Request) -> Response:
    services: Services = request.app.state.services
    nonce = secrets.token_urlsafe(16)
    return html_page(await demo.render(services, request, nonce=nonce), nonce)


async def to_demo(request: Request) -> Response:
    """``/`` under ``make run``: where a newcomer types the printed address, the demo."""
    return RedirectResponse("/demo/", 302)


async def demo_me(request: Request) -> Response:
    services: Services = request.app.state.services
    nonce = secrets.token_urlsafe(16)
    body = await demo.me(services, request, nonce=nonce)
    return html_page(body, nonce, {"Cache-Control": "no-store"})


async def disclosure_notice(request: Request) -> Response:
    """``/disclosure/{site_key}`` (HTML) and ``/disclosure/{site_key}.json``."""
    services: Services = request.app.state.services
    nonce = secrets.token_urlsafe(16)
    answer = await disclosure.render(services, request, nonce=nonce)
    return answer if isinstance(answer, Response) else html_page(answer, nonce, disclosure.HEADERS)


class CollectEndpoint:
    """``/collect``: the preflight (OPTIONS) and the beacon (POST) on one route, so a 405
    there names both in ``Allow``. POST is normally answered before the router (see
    ``tracker.app.Collector``); one that reaches the router is answered the same way."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            services: Services = scope["app"].state.services
            await collect.collect_asgi(scope, receive, send, services)
        else:
            response = await cors.preflight(Request(scope, receive))
            await response(scope, receive, send)


def console_routes() -> list[BaseRoute]:
    from tracker import console  # its pages use this module's html_page and readiness

    return console.routes()


class LazyRoutes(BaseRoute):
    """The routes under ``prefix``, imported at their first request: the console (Jinja2,
    Babel, Argon2, its catalogs: ~6 MiB) is not loaded into a collector nobody signs into."""

    def __init__(self, prefix: str, load: Callable[[], list[BaseRoute]]) -> None:
        self.prefix, self._load = prefix, load
        self._router: Router | None = None

    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self._load(), redirect_slashes=False)
        return self._router

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        return self.router().url_path_for(name, **path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router().app(scope, receive, send)


def routes(*, with_demo: bool) -> list[BaseRoute]:
    table: list[BaseRoute] = [
        # POST /collect never reaches the router: tracker.app.Collector answers it.
        Route("/collect", CollectEndpoint(), methods=["OPTIONS", "POST"]),
        Route("/p.gif", pixel.pixel, methods=["GET"]),
        Route("/t.js", tag, methods=["GET"]),
        Route("/s.js", stub_script, methods=["GET"]),
        Route("/cmp.js", cmp_script, methods=["GET"]),
        Route("/disclosure/{name}", disclosure_notice, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    table += api.routes()
    table.append(LazyRoutes("/admin", console_routes))
    table += segment.routes()
    if with_demo:
        table.append(Route("/", to_demo, methods=["GET"]))
        table.append(Route("/demo/", demo_page, methods=["GET"]))
        table.append(Route("/demo/me", demo_me, methods=["GET", "POST"]))
    return table
