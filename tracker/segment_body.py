"""Reading a Segment request's body: bounded, gzip inflated with a bound, decoded.

Segment's limits: 500 KB a request (after inflating), 2,500 messages a batch and 32 KB a
message (a single-message endpoint's body; in a batch ``tracker.segment`` drops the one).
A gzip body is inflated only up to the limit, so a decompression bomb costs at most that
much memory before the 413.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import msgspec
from starlette.requests import ClientDisconnect, Request

from tracker.http_errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tracker.segment_messages import Batch, Context, Envelope

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500
_ACCEPTED_TYPES = ("", "text/plain", "application/json")
_batch_decoder = msgspec.json.Decoder(Batch)
_envelope_decoder = msgspec.json.Decoder(Envelope)

Decoded = tuple[list[msgspec.Raw], str | None, Context | None, str | None]
"""The messages (each still raw), the batch's ``sentAt`` and ``context``, its ``writeKey``."""


async def read_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        raise UnsupportedMediaType("send JSON as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BATCH_BYTES):
        raise PayloadTooLarge(f"a request holds at most {MAX_BATCH_BYTES} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BATCH_BYTES:
                raise PayloadTooLarge(f"a request holds at most {MAX_BATCH_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("client went away") from None
    if not size:
        raise BadRequest("empty body")
    return b"".join(chunks)


def inflate(headers: Mapping[str, str], body: bytes, limit: int = MAX_BATCH_BYTES) -> bytes:
    """A gzip body inflated, never past ``limit`` bytes (a decompression bomb stops there)."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType("Content-Encoding must be gzip or identity")
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise BadRequest("body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"a request holds at most {limit} bytes once inflated")
    if not inflater.eof:
        raise BadRequest("body is not valid gzip (truncated)")
    return out


def decode(body: bytes, kind: str) -> Decoded:
    """The messages (raw), the batch's ``sentAt`` and ``context``, and its ``writeKey``."""
    if kind != "batch" and len(body) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(f"a message holds at most {MAX_MESSAGE_BYTES} bytes")
    try:
        if kind != "batch":
            return [msgspec.Raw(body)], None, None, _envelope_decoder.decode(body).write_key
        batch = _batch_decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError included; names no value
        raise BadRequest(f"body is not a Segment {kind} message: {exc}") from None
    if not batch.batch:
        raise BadRequest("batch must hold at least one message")
    if len(batch.batch) > MAX_BATCH_MESSAGES:
        raise PayloadTooLarge(f"a batch holds at most {MAX_BATCH_MESSAGES} messages")
    return batch.batch, batch.sent_at, batch.context, batch.write_key
