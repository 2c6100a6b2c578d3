"""CORS for the beacon endpoint: only origins some site allows, credentials included."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tracker.services import Services


def cors_headers(services: Services, origin: str | None) -> dict[str, str]:
    """CORS only for origins some site allows; the response varies by Origin."""
    if origin is None or origin not in services.sites.origins:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


async def preflight(request: Request) -> Response:
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    await services.sites.snapshot()
    headers = cors_headers(services, origin)
    if "Access-Control-Allow-Origin" not in headers:
        return Response(status_code=403, headers=headers)
    headers |= {
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "86400",
    }
    return Response(status_code=204, headers=headers)
