"""Signed identification: the site's backend vouches for the visitor's email.

The backend renders into the page a short-lived token for the logged-in user's email,
so the browser cannot claim someone else's address (the idea behind Marketo's
``associateLead``). Token: ``v1.<expires, unix seconds>.<base64url HMAC-SHA256>`` over
``v1|<site key>|<normalised email>|<expires>`` with the site's identify secret
(``ashiato site add`` prints it once). Python for the site's backend::

    import base64, hashlib, hmac, time, unicodedata
    def ashiato_token(secret: bytes, site_key: str, email: str, ttl: int = 600) -> str:
        expires = int(time.time()) + ttl
        email = unicodedata.normalize("NFKC", email).strip().lower()
        mac = hmac.new(secret, f"v1|{site_key}|{email}|{expires}".encode(), hashlib.sha256)
        return f"v1.{expires}." + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from privacy.crypto.primitives import normalise_email

MAX_LIFETIME = 24 * 3600
"""A token valid for longer than this is refused: it would be a password, not a token."""
_EXPIRES = re.compile(r"[0-9]{1,12}")
"""ASCII digits: ``str.isdigit`` also passes '²', which ``int`` then refuses."""


def make_token(secret: bytes, site_key: str, email: str, *, expires: int) -> str:
    mac = hmac.new(secret, _message(site_key, email, expires), hashlib.sha256).digest()
    return f"v1.{expires}." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def verify_token(secret: bytes, site_key: str, email: str, token: str, *, now: int) -> bool:
    """Valid signature, not expired, not valid for too long; constant-time compare."""
    version, _, rest = token.partition(".")
    expires_text, _, mac_text = rest.partition(".")
    if version != "v1" or not _EXPIRES.fullmatch(expires_text) or not mac_text:
        return False
    expires = int(expires_text)
    if not now < expires <= now + MAX_LIFETIME:
        return False
    expected = make_token(secret, site_key, email, expires=expires)
    return hmac.compare_digest(expected.encode(), token.encode())


def _message(site_key: str, email: str, expires: int) -> bytes:
    return f"v1|{site_key}|{normalise_email(email)}|{expires}".encode()
