"""Signing in and out, re-authentication, and the user's own account page."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pyotp
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from privacy.crypto.primitives import sign
from tracker.console.accounts import Accounts, password_matches, totp_matches
from tracker.console.i18n import LANGUAGES, valid_zone
from tracker.console.sessions import (
    Sessions,
    Throttle,
    cookie_header,
    cookie_name,
    csrf_matches,
    signin_cookie_name,
)
from tracker.console.web import Console, Denied, form, https, now_ms, page, render, services_of
from tracker.errors import Invalid
from tracker.ingest import api_client_ip

SIGNIN_COOKIE_SECONDS = 3600


def safe_next(target: str | None) -> str:
    """Only a path inside the console (no other host, no scheme-relative URL)."""
    if not target or not target.startswith("/admin/") or "\\" in target or "//" in target:
        return "/admin/"
    parts = urlsplit(target)
    return "/admin/" if parts.scheme or parts.netloc else target


async def signin_page(request: Request) -> Response:
    if request.method == "POST":
        return await _signin(request)
    return _signin_form(request, message=None)


def _signin_form(request: Request, *, message: str | None, status: int = 200) -> Response:
    secure = https(request)
    token = secrets.token_urlsafe(24)
    cookie = cookie_header(signin_cookie_name(secure), token, https=secure,
                           max_age=SIGNIN_COOKIE_SECONDS)  # fmt: skip
    response = render(request, "signin.html", status, token=token, message=message,
                      next=safe_next(request.query_params.get("next")))  # fmt: skip
    response.headers.append("Set-Cookie", cookie)
    return response


async def _signin(request: Request) -> Response:
    services = services_of(request)
    secure = https(request)
    try:
        fields = await form(request)
    except Denied:
        return _signin_form(request, message="refused", status=403)
    if not csrf_matches(request.cookies.get(signin_cookie_name(secure), ""), fields.get("token")):
        return _signin_form(request, message="expired", status=403)
    now = now_ms()
    accounts = Accounts(services.store, services.personal, services.vault)
    email, password = fields.get("email").strip(), fields.get("password")
    user = await accounts.find(email) if email and len(email) <= 254 else None
    # Throttle keys: the account (or, for an unknown email, its blind index) and a keyed
    # hash of the address; neither the email nor the address is stored.
    account_key = f"user:{user.id}" if user else "email:" + services.personal.email_index(
        email).hex()  # fmt: skip
    ip = api_client_ip(request.client.host if request.client else None, request.headers, services)
    index_key = services.parts.keyring.keyring.index_key
    address_key = "addr:" + sign(index_key, f"console address {ip}".encode()).hex()
    throttle = Throttle(services.store)
    if await throttle.blocked(account_key, address_key, now=now):
        return _signin_form(request, message="throttled", status=429)
    good = await password_matches(user, password)
    if good and user is not None and user.totp is not None:
        secret = await accounts.totp_secret(user)
        good = secret is not None and totp_matches(secret, fields.get("code"))
    if not good or user is None or user.disabled_at is not None:
        await throttle.failed(account_key, address_key, now=now)
        return _signin_form(request, message="wrong", status=401)
    await throttle.succeeded(account_key)
    await accounts.rehash_if_old(user, password)
    old = request.cookies.get(cookie_name(secure))
    token = await Sessions(services.store).start(user, now=now, replaces=old)
    await services.audit.record(f"user:{user.id}", "console.signin", user.id)
    response = RedirectResponse(safe_next(fields.get("next")), 303)
    response.headers.append("Set-Cookie", cookie_header(cookie_name(secure), token, https=secure))
    response.headers.append(
        "Set-Cookie", cookie_header(signin_cookie_name(secure), "", https=secure, max_age=0)
    )
    return response


def _signed_out(request: Request) -> Response:
    secure = https(request)
    response = RedirectResponse("/admin/signin", 303)
    response.headers.append("Set-Cookie", cookie_header(cookie_name(secure), "", https=secure,
                                                        max_age=0))  # fmt: skip
    return response


@page()
async def signout(console: Console) -> Response:
    await Sessions(console.services.store).end(console.signed.token)
    await console.audit("console.signout", console.user_id)
    return _signed_out(console.request)


@page()
async def signout_everywhere(console: Console) -> Response:
    ended = await Sessions(console.services.store).end_all(console.signed.user)
    await console.audit("console.signout_everywhere", console.user_id, sessions=ended)
    return _signed_out(console.request)


@page()
async def confirm(console: Console) -> Response:
    """Enter the password again: exports and erasures need one within 5 minutes."""
    target = safe_next(console.request.query_params.get("next") or console.form.get("next"))
    if console.request.method == "GET":
        return console.render("confirm.html", next=target, message=None)
    if not await password_matches(console.signed.user, console.form.get("password")):
        return console.render("confirm.html", 401, next=target, message="wrong")
    await Sessions(console.services.store).confirm(console.signed, now=now_ms())
    return RedirectResponse(target, 303)


@page()
async def account(console: Console) -> Response:
    user, accounts = console.signed.user, console.accounts
    message = None
    if console.request.method == "POST":
        fields = console.form
        action = fields.get("action")
        if action == "preferences":
            language, zone = fields.get("language"), fields.get("time_zone").strip()
            if language not in LANGUAGES or not valid_zone(zone):
                raise Invalid("choose a language and a time zone such as Asia/Tokyo")
            await accounts.set_preferences(user, language, zone)
        elif action == "totp":
            await accounts.enable_totp(user, fields.get("secret"), fields.get("code"))
            await console.audit("console.totp", user.id)
        elif action == "password":
            if not await password_matches(user, fields.get("current")):
                raise Invalid("the current password is wrong")
            await accounts.set_password(user, fields.get("new"))
            await console.audit("console.password", user.id)
            return _signed_out(console.request)  # every session ended: sign in again
        return RedirectResponse("/admin/account?saved=1", 303)
    if console.request.query_params.get("saved"):
        message = "saved"
    secret = pyotp.random_base32()
    email = (await accounts.opened(user)).email
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="ashiato")
    return console.render("account.html", secret=secret, otpauth=uri, email=email,
                          languages=LANGUAGES, message=message)  # fmt: skip
