"""The beacon endpoint: read -> parse -> ``tracker.ingest`` -> answer.

``POST /collect`` is the hot path, so it is a plain ASGI handler that ``tracker.app``
dispatches to before Starlette's router (measured: the router, request and response
objects and two exception middlewares cost about as much as all of ashiato's own work
per beacon). Everything else, including the pixel (``tracker.pixel``) and the preflight
(``tracker.cors``), goes through Starlette.

A 2xx answer means every accepted event of the request is committed. Dropped events
(bots, unknown sites, foreign origins, no consent) get the same 204 as stored ones, so
the answer does not tell a scraper which filter caught it; the reason is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

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
    """``POST /collect``: one event or ``{"events": [...]}``; 204 once committed."""
    client = ClientInfo.from_scope(scope)
    origin = client.headers.get("origin")
    try:
        try:
            body = await read_body(client.headers, receive, services.settings.max_body_bytes)
            beacons = beacons_of(body, max_events=services.settings.max_batch_events)
        except HTTPError:
            services.metrics.dropped[DropReason.INVALID] += 1
            raise
        set_cookie = await ingest(client, services, beacons, origin)
    except ANSWERED as exc:
        status, message, headers = answer(exc)
        headers = headers | cors_headers(services, origin)
        body = orjson.dumps({"error": message})
        await _respond(send, services, status, headers, body, media_type=JSON)
        return
    except StorageError as exc:  # e.g. the consent read for the cookie, after the write
        log.warning("storage unavailable", extra={"path": "/collect", "cause": str(exc)})
        headers = {"Retry-After": "2"} | cors_headers(services, origin)
        await _respond(send, services, 503, headers, _UNAVAILABLE, media_type=JSON)
        return
    except Exception:
        log.exception("collect failed")
        body = b'{"error":"internal error"}'
        await _respond(send, services, 500, {}, body, media_type=JSON)
        return
    headers = cors_headers(services, origin)
    if set_cookie:
        headers["Set-Cookie"] = set_cookie
    await _respond(send, services, 204, headers, b"")


async def _respond(
    send: Send,
    services: Services,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    media_type: str | None = None,
) -> None:
    services.metrics.responses[status] += 1
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if media_type:
        raw.append((b"content-type", media_type.encode()))
    if body or status != 204:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The request body, refusing compressed or oversized bodies before reading them."""
    if headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("compressed bodies are not accepted")
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        raise UnsupportedMediaType("send JSON as text/plain or application/json")
    declared = headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(f"body larger than {limit} bytes")
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
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not body:
        raise BadRequest("empty body")
    return body
