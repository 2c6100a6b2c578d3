"""The beacon endpoint: read -> parse -> ``tracker.ingest`` -> answer.

``POST /collect`` is the hot path. Usually ``tracker.http`` reads the whole request and
calls ``collect_raw`` without the ASGI layer (its scope, cycle, receive and send cost
about a tenth of the collector's time per beacon); otherwise (a body of undeclared
length, a request pipelined behind another, the access log on) it is a plain ASGI
handler that ``tracker.app`` dispatches to before Starlette's router (the router,
request and response objects and two exception middlewares cost about as much as all
of ashiato's own work per beacon). Both give ``beacon_reply``'s answer. Everything else,
including the pixel (``tracker.pixel``) and the preflight (``tracker.cors``), goes
through Starlette.

A 2xx answer means every accepted event of the request is committed. Dropped events
(bots, unknown sites, foreign origins, no consent) get the same 204 as stored ones, so
the answer does not tell a scraper which filter caught it; the reason is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import orjson
from starlette.types import Receive, Scope, Send

from tracker.beacon import beacons_of
from tracker.cors import cors_headers
from tracker.drops import DropReason
from tracker.errors import StorageError
from tracker.http_errors import (
    ANSWERED,
    BadRequest,
    HTTPError,
    PayloadTooLarge,
    UnsupportedMediaType,
    answer,
)
from tracker.ingest import ClientInfo, ingest
from tracker.services import Services

log = logging.getLogger("ashiato.collect")

JSON = "application/json"
COLLECTOR_PATHS = frozenset({"/collect", "/p.gif"})
"""Whose answers ``ashiato_http_responses_total`` counts (every status, 2xx included)."""
_ACCEPTED_TYPES = ("", "text/plain", "application/json")
_UNAVAILABLE = b'{"error":"database unavailable"}'


async def collect_asgi(scope: Scope, receive: Receive, send: Send, services: Services) -> None:
    """``POST /collect`` through ASGI: what the raw path (``tracker.http``) does not take."""
    client = ClientInfo.from_scope(scope)
    limit = services.settings.max_body_bytes
    status, headers, body = await beacon_reply(
        client, services, lambda: read_body(client.headers, receive, limit)
    )
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def collect_raw(client: ClientInfo, body: bytes, services: Services) -> Reply:
    """``POST /collect`` whose whole body ``tracker.http`` has read (a declared length
    within the limit), answered without the ASGI layer; the same answers."""

    async def read() -> bytes:
        check_body_headers(client.headers, services.settings.max_body_bytes)
        return non_empty(body)

    return await beacon_reply(client, services, read)


Reply = tuple[int, dict[str, str], bytes]
"""Status, headers (content-type and content-length included), body."""


async def beacon_reply(
    client: ClientInfo, services: Services, read: Callable[[], Awaitable[bytes]]
) -> Reply:
    """One event or ``{"events": [...]}``; 204 once committed."""
    origin = client.headers.get("origin")
    try:
        try:
            body = await read()
            beacons = beacons_of(body, max_events=services.settings.max_batch_events)
        except HTTPError:
            services.metrics.dropped[DropReason.INVALID] += 1
            raise
        set_cookie = await ingest(client, services, beacons, origin)
    except ANSWERED as exc:
        status, message, headers = answer(exc)
        headers = headers | cors_headers(services, origin)
        return _reply(services, status, headers, orjson.dumps({"error": message}), JSON)
    except StorageError as exc:  # e.g. the consent read for the cookie, after the write
        log.warning("storage unavailable", extra={"path": "/collect", "cause": str(exc)})
        headers = {"Retry-After": "2"} | cors_headers(services, origin)
        return _reply(services, 503, headers, _UNAVAILABLE, JSON)
    except Exception:
        log.exception("collect failed")
        return _reply(services, 500, {}, b'{"error":"internal error"}', JSON)
    headers = cors_headers(services, origin)
    if set_cookie:
        headers["Set-Cookie"] = set_cookie
    return _reply(services, 204, headers, b"")


def _reply(
    services: Services,
    status: int,
    headers: dict[str, str],
    body: bytes,
    media_type: str | None = None,
) -> Reply:
    services.metrics.responses[status] += 1
    if media_type:
        headers["Content-Type"] = media_type
    if body or status != 204:
        headers["Content-Length"] = str(len(body))
    return status, headers, body


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The request body, refusing compressed or oversized bodies before reading them."""
    check_body_headers(headers, limit)
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return non_empty(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def check_body_headers(headers: Mapping[str, str], limit: int) -> None:
    """Refuse a compressed body, another media type or a declared length over ``limit``."""
    if headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("compressed bodies are not accepted")
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        raise UnsupportedMediaType("send JSON as text/plain or application/json")
    declared = headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(f"body larger than {limit} bytes")


def non_empty(body: bytes) -> bytes:
    if not body:
        raise BadRequest("empty body")
    return body
