"""``GET /p.gif``: a page view or event from query parameters (noscript, email opens)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tracker import cookies
from tracker.beacon import PIXEL_TYPES, validate
from tracker.ingest import ClientInfo, ingest
from tracker.services import Services

# The smallest transparent GIF (43 bytes).
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


async def pixel(request: Request) -> Response:
    """``GET /p.gif``: a page view or event from query parameters (noscript, email opens).
    ``HEAD`` (link checkers, prefetchers) gets the same headers and records nothing."""
    services: Services = request.app.state.services
    if request.method == "GET":
        client = ClientInfo(request.client.host if request.client else None, request.headers)
        raw = pixel_beacon(request.query_params, request.headers)
        await ingest(client, services, [validate(raw, types=PIXEL_TYPES)], None)
    services.metrics.responses[200] += 1
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


def pixel_beacon(query: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
    """A beacon from pixel query parameters; the visitor id falls back to the visitor
    cookie (the collector's own ``id.s`` first, else the tag's bare id), then a new one."""
    fields = ("site", "vid", "url", "referrer", "title", "name")
    raw: dict[str, Any] = {k: query[k] for k in fields if k in query}
    raw["type"] = query.get("type", "pageview")
    if "vid" not in raw:
        cookie = cookies.read_vid(headers.get("cookie"))
        raw["vid"] = cookie[0] if cookie else secrets.token_hex(16)
    if "url" not in raw and raw["type"] == "pageview":
        raw["url"] = headers.get("referer")
    return raw
