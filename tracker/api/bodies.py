"""Request bodies: one Struct each, read and checked by msgspec in one pass.

A body that does not fit its Struct is a 400 ``{"error": ...}`` naming the field (never
a traceback); the same Structs give the OpenAPI document its request schemas. Rules
the beacon shares with the collector (traits, consent policy) are applied after, by
``tracker.beacon.validate``, so both doors keep one set of rules.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import UNSET, Struct, UnsetType
from starlette.requests import ClientDisconnect, Request

from tracker.api.fields import (
    EVENT_TYPES,
    EventType,
    HookUrl,
    LeadRef,
    Policy,
    Reason,
    SiteKey,
    SubjectText,
    Traits,
    VisitorId,
    VisitorRef,
)
from tracker.http_errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_JSON_BODY = 65_536
NUL_REFUSED = "text must not contain NUL (U+0000) characters"
"""PostgreSQL text cannot hold U+0000 and SQLite's can: refused at the door, so both
backends answer alike and no database error becomes a 500 (or a 503)."""
_NO_NUL = "^[^\\x00]*$"
NUL_FREE = {"anyOf": [
    {"type": "string", "pattern": _NO_NUL}, {"type": ["number", "boolean", "null"]},
    {"type": "array", "items": {"$ref": "#/components/schemas/NulFree"}},
    {"type": "object", "propertyNames": {"pattern": _NO_NUL},
     "additionalProperties": {"$ref": "#/components/schemas/NulFree"}},
]}  # fmt: skip
"""The NUL rule for the document: any JSON value with no U+0000 in any string or key."""
NUL_FREE_BODY = {"propertyNames": {"pattern": _NO_NUL},
                 "additionalProperties": {"$ref": "#/components/schemas/NulFree"}}  # fmt: skip
"""Beside a body's ``$ref``: every member, named in the Struct or not, is NUL-free."""
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""JSON can only carry U+0000 as the escape ``\\u0000`` (not after an escaped backslash)."""


class Consent(Struct, forbid_unknown_fields=True):
    """A misspelt purpose is refused, never dropped silently; at least one is stated."""

    analytics: bool | UnsetType = UNSET
    marketing: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.analytics is UNSET and self.marketing is UNSET:
            raise ValueError("consent must hold analytics and/or marketing, each true or false")


_ONE_PURPOSE_AT_LEAST = msgspec.Meta(extra_json_schema={"minProperties": 1})
"""``Consent.__post_init__``'s rule, said in the document too (a Struct has no schema
extras of its own, so the fields that hold one carry it)."""


class ConsentBody(Struct):
    site: SiteKey
    vid: VisitorId
    consent: Annotated[Consent, _ONE_PURPOSE_AT_LEAST]
    policy: Policy | None = None


class IdentifyBody(Struct):
    """Include ``consent`` to record the marketing consent the site obtained itself."""

    site: SiteKey
    vid: VisitorId
    traits: Traits
    consent: Annotated[Consent | None, _ONE_PURPOSE_AT_LEAST] = None
    policy: Policy | None = None


class MergeBody(Struct):
    """The other lead (merged into, or split from, the one in the path) and why."""

    other: LeadRef
    reason: Reason


class DismissBody(Struct):
    """名寄せ: the two leads of a suggested pair that are not the same person."""

    lead: LeadRef
    other: LeadRef


class WebhookBody(Struct):
    """Deliveries of every event type unless ``events`` names some."""

    url: HookUrl
    events: Annotated[list[EventType], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: list(EVENT_TYPES)
    )


class SubjectBody(Struct):
    """Name exactly one of ``email``, ``lead`` or ``visitor``."""

    email: SubjectText | None = None
    lead: LeadRef | None = None
    visitor: VisitorRef | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.email, self.lead, self.visitor)) != 1:
            raise ValueError("name exactly one of email, lead or visitor (a string)")


class ExportBody(SubjectBody):
    format: Literal["json", "csv"] = "json"


SUBJECT_RULE = {"oneOf": [{"required": [name], "properties": {name: {"type": "string"}}}
                          for name in ("email", "lead", "visitor")]}  # fmt: skip
"""What ``__post_init__`` checks, for the document: exactly one of them, a string."""

Body = TypeVar("Body", bound=Struct)
_decoders: dict[type[Struct], msgspec.json.Decoder[Struct]] = {}


async def read_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as ``model``: 415, 413 or 400 otherwise."""
    return decode_body(await raw_body(request), model)


async def raw_body(request: Request) -> bytes:
    if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("compressed bodies are not accepted")  # no gzip bombs
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("", "application/json"):
        raise UnsupportedMediaType("send application/json")
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_JSON_BODY:
                raise PayloadTooLarge(f"body larger than {MAX_JSON_BODY} bytes")
    except ClientDisconnect:
        raise BadRequest("client went away") from None  # nobody reads it; no 500 in the log
    return body


def decode_body(body: bytes, model: type[Body]) -> Body:
    decoder = _decoders.get(model) or _decoders.setdefault(model, msgspec.json.Decoder(model))
    holds_nul = _NUL_ESCAPE.search(body) is not None  # named as such, whichever field
    try:
        value = decoder.decode(body or b"{}")
    except msgspec.ValidationError as exc:
        raise BadRequest(NUL_REFUSED if holds_nul else field_message(str(exc))) from None
    except msgspec.DecodeError:
        raise BadRequest("body is not valid JSON") from None
    if holds_nul:  # in traits, or in a field the Struct ignores
        raise BadRequest(NUL_REFUSED)
    assert isinstance(value, model)
    return value


def field_message(message: str) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.limit`" as "limit: expected ..."."""
    text, sep, where = message.rpartition(" - at `$")
    if not sep:
        return "body must be a JSON object" if message.startswith("Expected `object`") else message
    return f"{where.rstrip('`').lstrip('.')}: {text[0].lower()}{text[1:]}"


class AdjustBody(Struct, forbid_unknown_fields=True):
    """A manual ledger entry: who is the API key; why is ``reason``."""

    site: SiteKey
    points: Annotated[float, msgspec.Meta(ge=-10_000, le=10_000, multiple_of=1)]
    """A whole number (``10`` or ``10.0``)."""
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    axis: Literal["engagement", "fit"] = "engagement"
