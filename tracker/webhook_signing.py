"""Standard Webhooks signatures (https://www.standardwebhooks.com/), so a receiver can
verify deliveries with an off-the-shelf library (``standardwebhooks``, Svix's, …).

Every delivery carries ``webhook-id`` (the delivery id, the same on every retry),
``webhook-timestamp`` (unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">``, next to ashiato's own ``Ashiato-Signature``. The key is the
endpoint's signing secret, which the libraries take as ``whsec_<base64 of the secret>``:
the very secret whose hex the API has always returned, so existing endpoints need no new
secret (``whsec_`` of ``bytes.fromhex(secret)``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"


def whsec(secret: bytes) -> str:
    """The secret as Standard Webhooks libraries take it."""
    return PREFIX + base64.b64encode(secret).decode()


def standard_signature(secret: bytes, delivery_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def standard_headers(
    secret: bytes, delivery_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, delivery_id, timestamp, body),
    }
