"""What every console page shares: rendering, forms, who is signed in, CSRF, roles.

Pages are Jinja2 templates with autoescaping on; every answer goes through
``tracker.routes.html_page``, so it carries the strict CSP with a fresh nonce (the
stylesheet and the one script are same-origin files, taken by nonce and 'self').
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.console.accounts import SECOND_FACTOR_ROLES, Accounts
from tracker.console.i18n import LANGUAGES, Clock, gettext_for
from tracker.console.sessions import Sessions, Signed, cookie_name, csrf_matches
from tracker.errors import Invalid, Refused
from tracker.http_errors import answer
from tracker.ingest import ClientInfo
from tracker.routes import html_page
from tracker.scope import SiteScope
from tracker.services import Services

MAX_FORM_BYTES = 64 * 1024
Handler = Callable[[Request], Awaitable[Response]]

ENV = Environment(
    loader=PackageLoader("tracker.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class Denied(Exception):
    """An action this user may not take (403), or a form without its token."""


@dataclass(frozen=True, slots=True)
class Console:
    """One request's view of the console: the services, the signed-in user, their clock."""

    request: Request
    services: Services
    signed: Signed
    clock: Clock

    @property
    def user_id(self) -> str:
        return self.signed.user.id

    @property
    def scope(self) -> SiteScope:
        """The sites this user sees (every site, unless limited)."""
        return SiteScope.of(self.signed.user.sites)

    @property
    def actor(self) -> str:
        """Who the audit log names: the user's id, never their email."""
        return f"user:{self.signed.user.id}"

    @property
    def form(self) -> Form:
        """The posted form (checked for its token before the handler runs)."""
        found: Form = getattr(self.request.state, "form", Form({}))
        return found

    @property
    def accounts(self) -> Accounts:
        s = self.services
        return Accounts(s.store, s.personal, s.vault)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return render(self.request, template, status, signed=self.signed, clock=self.clock,
                      **context)  # fmt: skip

    async def audit(self, action: str, subject: str, **detail: Any) -> None:
        await self.services.audit.record(self.actor, action, subject, detail)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def https(request: Request) -> bool:
    client = ClientInfo.from_scope(request.scope)
    return client.https(services_of(request).settings.trusted_proxies)


def render(
    request: Request, template: str, status: int = 200, *, signed: Signed | None = None,
    clock: Clock | None = None, headers: dict[str, str] | None = None, **context: Any,
) -> Response:  # fmt: skip
    nonce = secrets.token_urlsafe(16)
    language = signed.user.language if signed else _browser_language(request)
    translate = gettext_for(language)
    body = ENV.get_template(template).render(
        _=translate.gettext, ngettext=translate.ngettext, lang=language, nonce=nonce,
        signed=signed, clock=clock or Clock(language, "Asia/Tokyo", now_ms()),
        csrf=signed.csrf if signed else "", path=request.url.path, **context,
    )  # fmt: skip
    answer_headers = {"Cache-Control": "no-store"} | (headers or {})
    response = html_page(body, nonce, answer_headers)
    response.status_code = status
    return response


def _browser_language(request: Request) -> str:
    accepted = request.headers.get("accept-language", "").lower()
    first = accepted.split(",")[0].strip()[:2]
    return first if first in LANGUAGES else "ja"


class Form:
    """A posted urlencoded form: the first value of a field, or all of them."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))


async def form(request: Request) -> Form:
    """The urlencoded form body; bounded; NUL characters refused."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Denied("not a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Denied("form too large")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise Denied("malformed form") from None
    if any("\x00" in v for values in fields.values() for v in values):
        raise Denied("malformed form")
    return Form(fields)


def to_signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/admin/signin?next={quote(target, safe='/')}", 303)


def page(*roles: str) -> Callable[[Callable[[Console], Awaitable[Response]]], Handler]:
    """A console handler for ``roles`` (none: any signed-in user). Signed-out requests go
    to the sign-in page; other roles get 403; a POST without the session's form token
    gets 403 and changes nothing."""

    def wrap(handler: Callable[[Console], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            services = services_of(request)
            now = now_ms()
            token = request.cookies.get(cookie_name(https(request)))
            signed = await Sessions(services.store).current(token, now=now)
            if signed is None:
                return to_signin(request)
            user = signed.user
            console = Console(request, services, signed, Clock(user.language, user.time_zone, now))
            if roles and user.role not in roles:
                return forbidden(console)
            if _needs_second_factor(services, signed) and request.url.path != "/admin/account":
                return RedirectResponse("/admin/account", 303)
            return await _handle(console, handler)

        return endpoint

    return wrap


async def _handle(console: Console, handler: Callable[[Console], Awaitable[Response]]) -> Response:
    """Check a POST's form token, run the handler, turn refusals into pages."""
    try:
        request = console.request
        given = [*request.query_params.values(), *map(str, request.path_params.values())]
        if any("\x00" in value for value in given):
            raise Invalid("a NUL character is not allowed in an address")
        if console.request.method == "POST":
            fields = await form(console.request)
            if not csrf_matches(console.signed.csrf, fields.get("csrf")):
                return forbidden(console)
            console.request.state.form = fields
        return await handler(console)
    except Denied:
        return forbidden(console)
    except Refused as exc:
        status, message, _ = answer(exc)
        return console.render("error.html", status, message=message)


def forbidden(console: Console) -> Response:
    return console.render("error.html", 403, message=None)


def _needs_second_factor(services: Services, signed: Signed) -> bool:
    return (
        services.settings.console_require_2fa
        and signed.user.role in SECOND_FACTOR_ROLES
        and signed.user.totp is None
    )


def checked(values: Iterable[str], allowed: Iterable[str]) -> list[str]:
    allowed = set(allowed)
    return [v for v in values if v in allowed]
