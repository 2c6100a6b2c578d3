"""API keys: created once (shown once), stored hashed, scoped, revocable.

A key reads ``ak_<id>_<secret>``: the id finds the row, the secret (256 random bits) is
compared by its SHA-256 in constant time. A fast hash is right here because the secret
is random, not a password. Missing, malformed, unknown, wrong and revoked keys all get
the same 401; a valid key without the scope gets 403.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence

from starlette.requests import Request

from tracker.errors import Invalid
from tracker.http_errors import Forbidden, TooManyRequests, Unauthorized
from tracker.ingest import api_client_ip
from tracker.ratelimit import client_key
from tracker.scope import SiteScope, limit_for
from tracker.storage import Store
from tracker.storage.records import ApiKey

SCOPES = ("read", "identify", "privacy", "admin")
_KEY = re.compile(r"ak_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
TOUCH_EVERY_MS = 60_000
"""Record a key's last use at most once a minute (not a write per request)."""
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ashiato"'}


def new_api_key(
    name: str, scopes: Sequence[str], *, now: int, sites: Sequence[int] = ()
) -> tuple[ApiKey, str]:
    """A new key (to store) and its secret (to show once); with ``sites`` (ids), limited
    to them (``tracker.scope``)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("name must be 1 to 100 characters")
    if not scopes or any(s not in SCOPES for s in scopes):
        raise Invalid(f"scopes must be some of {', '.join(SCOPES)}")
    limit = limit_for(scopes, sites)
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    record = ApiKey(key_id, name, tuple(dict.fromkeys(scopes)), _digest(secret), now,
                    sites=limit)  # fmt: skip
    return record, f"ak_{key_id}_{secret}"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def authenticate(store: Store, authorization: str | None, scope: str) -> ApiKey:
    key = await _valid_key(store, authorization)
    if key is None:
        raise Unauthorized("missing or invalid API key", headers=_CHALLENGE)
    if scope not in key.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")
    now = time.time_ns() // 1_000_000
    if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY_MS:
        await store.touch_api_key(key.id, now)
    return key


def scope_of(key: ApiKey) -> SiteScope:
    """What the key may see: every site, or the sites it is limited to."""
    return SiteScope.of(key.sites)


async def require(request: Request, scope: str) -> ApiKey:
    """Rate-limit the client address (before the key is even looked at: guessing keys
    or enumerating ids gets slow), then authenticate and check the scope."""
    services = request.app.state.services
    ip = api_client_ip(request.client.host if request.client else None, request.headers, services)
    try:
        services.limits.api.take(client_key(ip))
    except TooManyRequests:
        services.metrics.rate_limited["api"] += 1
        raise
    return await authenticate(services.store, request.headers.get("authorization"), scope)


async def _valid_key(store: Store, authorization: str | None) -> ApiKey | None:
    scheme, _, token = (authorization or "").partition(" ")
    match = _KEY.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        return None
    key = await store.api_key(match.group(1))
    expected = key.secret_hash if key is not None else _digest("not a key")
    if not hmac.compare_digest(expected, _digest(match.group(2))):
        return None
    if key is None or key.revoked_at is not None:
        return None
    return key
