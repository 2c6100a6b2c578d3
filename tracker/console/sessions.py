"""Console sessions: server-side, found by the hash of a random cookie token.

* The cookie holds 256 random bits; the database only their SHA-256, so a copy of the
  database signs no one in. Over HTTPS it is ``__Host-ashiato_console`` (``Secure``,
  ``Path=/``, no ``Domain``: only this host, only over TLS); on plain-HTTP development
  servers browsers refuse ``__Host-`` cookies without ``Secure``, so it is
  ``ashiato_console`` there. Always ``HttpOnly`` and ``SameSite=Strict``.
* A session ends after 30 minutes without a request (idle) and 12 hours after sign-in
  (absolute), when its user is disabled or changes password, and on sign-out (this
  one, or everywhere).
* Sign-in always makes a new token and deletes the one the browser came with, so a
  token planted before sign-in (session fixation) never becomes a signed-in session.
* Exports and erasures need the password entered within the last 5 minutes.
* Every state-changing form carries a synchronizer token derived from the session's
  token (HMAC), checked on every POST; the sign-in form, before any session, carries a
  random token that must match a short-lived cookie of its own (double submit).
* Failed sign-ins are counted per account and per (keyed hash of the) address: beyond
  the limits, sign-in is refused for the rest of the window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from tracker.storage import Store
from tracker.storage.records import ConsoleSession, ConsoleUser

MINUTE_MS = 60_000
IDLE_MS = 30 * MINUTE_MS
ABSOLUTE_MS = 12 * 60 * MINUTE_MS
REAUTH_MS = 5 * MINUTE_MS
TOUCH_EVERY_MS = MINUTE_MS
"""The idle clock is written at most once a minute (not a write per page)."""
THROTTLE_WINDOW_MS = 15 * MINUTE_MS
ACCOUNT_FAILURES = 5
ADDRESS_FAILURES = 20


def cookie_name(https: bool) -> str:
    return "__Host-ashiato_console" if https else "ashiato_console"


def signin_cookie_name(https: bool) -> str:
    return "__Host-ashiato_signin" if https else "ashiato_signin"


def cookie_header(name: str, value: str, *, https: bool, max_age: int | None = None) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if https:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token(token: str) -> str:
    """The form token of the session whose cookie holds ``token``."""
    return hmac.new(token.encode(), b"ashiato console csrf", hashlib.sha256).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class Signed:
    """A request's live session and its user."""

    token: str
    session: ConsoleSession
    user: ConsoleUser

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def confirmed_recently(self, now: int) -> bool:
        return now - self.session.confirmed_at <= REAUTH_MS


class Sessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def start(self, user: ConsoleUser, *, now: int, replaces: str | None) -> str:
        """A fresh session for ``user``; the browser's previous token is ended."""
        token = secrets.token_urlsafe(32)
        session = ConsoleSession(token_hash(token), user.id, now, now, now)
        old = token_hash(replaces) if replaces else None
        await self.store.start_console_session(session, replaces=old, stale=now - IDLE_MS)
        return token

    async def current(self, token: str | None, *, now: int) -> Signed | None:
        """The live session for the cookie's ``token``; an expired one is ended."""
        if not token or len(token) > 100:
            return None
        hashed = token_hash(token)
        session = await self.store.console_session(hashed)
        if session is None:
            return None
        user = await self.store.console_user(session.user_id)
        expired = now - session.seen_at > IDLE_MS or now - session.created_at > ABSOLUTE_MS
        if expired or user is None or user.disabled_at is not None:
            await self.store.end_console_session(hashed)
            return None
        if now - session.seen_at > TOUCH_EVERY_MS:
            await self.store.touch_console_session(hashed, seen_at=now)
        return Signed(token, session, user)

    async def confirm(self, signed: Signed, *, now: int) -> None:
        """The password was entered again: exports and erasures are open for 5 minutes."""
        await self.store.touch_console_session(
            signed.session.token_hash, seen_at=now, confirmed_at=now
        )

    async def end(self, token: str) -> None:
        await self.store.end_console_session(token_hash(token))

    async def end_all(self, user: ConsoleUser) -> int:
        return await self.store.end_console_sessions(user.id)


class Throttle:
    """Failed sign-ins per account and per address, within a window."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def blocked(self, account: str, address: str, *, now: int) -> bool:
        found = await self.store.signin_failures([account, address], since=now - THROTTLE_WINDOW_MS)
        return found.get(account, 0) >= ACCOUNT_FAILURES or (
            found.get(address, 0) >= ADDRESS_FAILURES
        )

    async def failed(self, account: str, address: str, *, now: int) -> None:
        await self.store.note_signin_failure(
            [account, address], at=now, window_start=now - THROTTLE_WINDOW_MS
        )

    async def succeeded(self, account: str) -> None:
        await self.store.clear_signin_failures([account])
