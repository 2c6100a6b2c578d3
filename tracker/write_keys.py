"""Write keys: how a server-side sender (a Segment or RudderStack SDK) names its site.

A write key is a random secret, shown once (``ashiato site add``, ``ashiato site
write-key``) and stored as its SHA-256 only: a fast hash is right for a 192-bit random
secret, as for API keys. Senders present it as HTTP Basic (``writeKey:``, with or without
the colon) or as ``writeKey`` in the body. The directory remembers answers for a few
seconds, so a rotated key stops working within ``ASHIATO_SITE_CACHE_SECONDS``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Callable

from tracker.storage import Store

_MAX_KEY = 128
_MAX_REMEMBERED = 4096


def new_write_key() -> str:
    return secrets.token_urlsafe(24)


def key_hash(write_key: str) -> bytes:
    return hashlib.sha256(write_key.encode()).digest()


async def issue_write_key(store: Store, site_id: int, *, now: int) -> str:
    """A new write key for the site (any earlier one stops working); shown only now."""
    write_key = new_write_key()
    await store.set_write_key(site_id, key_hash(write_key), now=now)
    return write_key


def from_basic_auth(authorization: str | None) -> str | None:
    """The write key in ``Authorization: Basic base64(writeKey:)``; None if absent or
    malformed (the body's ``writeKey`` may still name it)."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 4 * _MAX_KEY:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


class WriteKeyDirectory:
    """write key -> site id, remembered for ``ttl`` seconds (unknown keys too, so a
    flood of bogus keys costs one query each per ``ttl`` at most)."""

    def __init__(
        self, store: Store, *, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._known: dict[bytes, tuple[int | None, float]] = {}

    async def site_id(self, write_key: str) -> int | None:
        if not write_key or len(write_key) > _MAX_KEY:
            return None
        digest, now = key_hash(write_key), self._clock()
        remembered = self._known.get(digest)
        if remembered is not None and now - remembered[1] < self._ttl:
            return remembered[0]
        site_id = await self._store.site_of_write_key(digest)
        if len(self._known) >= _MAX_REMEMBERED:
            self._known.clear()
        self._known[digest] = (site_id, now)
        return site_id
