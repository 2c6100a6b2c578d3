"""The Segment HTTP Tracking API's messages: decoded with msgspec, turned into beacons.

Each message becomes the beacon the tag would have sent (then ``beacon.validate`` and
the pipeline apply the very same rules): ``page`` a pageview (an event named ``page``
without a URL), ``track`` an event named as tracked, ``identify`` an identification,
``screen``, ``group`` and ``alias`` events of those names. ``anonymousId`` is the visitor
id: an ashiato visitor id or a UUID as it is, any other string by a keyed hash (never
stored as sent); a ``userId`` alone gets its own pseudonymous visitor id the same way.
Nested properties and traits are kept as JSON text when short, dropped when not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from privacy.crypto.primitives import sign
from privacy.server_consent import Purposes, from_categories, from_consent_ids
from tracker import beacon as rules
from tracker.beacon import is_visitor_id

KINDS = frozenset({"identify", "track", "page", "screen", "group", "alias"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")

Id = str | int | None


class Page(msgspec.Struct):
    url: str | None = None
    referrer: str | None = None
    title: str | None = None


class SegmentConsent(msgspec.Struct, rename="camel"):
    category_preferences: dict[str, Any] = msgspec.field(default_factory=dict)


class RudderConsent(msgspec.Struct, rename="camel"):
    allowed_consent_ids: list[Any] = msgspec.field(default_factory=list)
    denied_consent_ids: list[Any] = msgspec.field(default_factory=list)


class Context(msgspec.Struct, rename="camel"):
    ip: str | None = None
    user_agent: str | None = None
    page: Page | None = None
    consent: SegmentConsent | None = None
    consent_management: RudderConsent | None = None
    traits: dict[str, Any] | None = None
    """Where RudderStack's SDKs put an identify's traits."""


class Message(msgspec.Struct, rename="camel"):
    type: str | None = None
    message_id: Id = None
    anonymous_id: Id = None
    user_id: Id = None
    previous_id: Id = None
    group_id: Id = None
    event: str | None = None
    name: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: Context | None = None
    timestamp: str | None = None
    """ISO 8601; one that does not parse is ignored (the server's clock stands)."""
    sent_at: str | None = None
    write_key: str | None = None


class Batch(msgspec.Struct, rename="camel"):
    batch: list[msgspec.Raw]
    sent_at: str | None = None
    write_key: str | None = None
    context: Context | None = None


class Envelope(msgspec.Struct, rename="camel"):
    """What a single-message endpoint's body must hold before it is decoded in full."""

    write_key: str | None = None


@dataclass(slots=True)
class Converted:
    """One message as ashiato takes it."""

    raw: dict[str, Any]
    """The beacon the tag would have sent (``beacon.validate`` checks it next)."""
    message_id: bytes | None
    context: Context
    consent: Purposes | None
    consent_source: str
    user_vid: str | None
    """The ``userId``'s own visitor id (identify and alias link it too)."""
    previous_vid: str | None = None


def visitor_id(raw: str | int, *, index_key: bytes, site_key: str) -> str:
    """An ashiato visitor id or a UUID as it is; anything else by a keyed hash (the same
    for an ``anonymousId``, a ``userId`` and an alias's ``previousId``)."""
    text = str(raw)
    if is_visitor_id(text):
        return text
    compact = text.replace("-", "").lower()
    if len(text) == 36 and is_visitor_id(compact):
        return compact
    return sign(index_key, f"segment\0{site_key}\0{text}".encode())[:16].hex()


def message_key(message_id: Id, *, index_key: bytes, site_key: str) -> bytes | None:
    """What the seen-messages table keeps of a messageId: short, fixed size, keyed."""
    if message_id is None or message_id == "":
        return None
    return sign(index_key, f"message\0{site_key}\0{message_id}".encode())[:16]


def convert(message: Message, kind: str, *, site_key: str, index_key: bytes,
            sent_at: str | None, shared: Context | None) -> Converted | None:  # fmt: skip
    """The message as ashiato takes it; None when it names no visitor."""
    named = (("anonymous", message.anonymous_id), ("user", message.user_id),
             ("previous", message.previous_id))  # fmt: skip
    ids = {name: visitor_id(raw, index_key=index_key, site_key=site_key)
           for name, raw in named if raw is not None and raw != ""}  # fmt: skip
    vid = ids.get("anonymous") or ids.get("user")
    previous_vid = ids.get("previous") if kind == "alias" else None
    vid = previous_vid or vid
    if vid is None:
        return None
    context = message.context or shared or Context()
    raw = _beacon(message, kind, context, site_key=site_key, vid=vid, sent_at=sent_at)
    consent, source = stated_consent(context)
    key = message_key(message.message_id, index_key=index_key, site_key=site_key)
    return Converted(raw, key, context, consent, source, ids.get("user"), previous_vid)


def _beacon(message: Message, kind: str, context: Context, *, site_key: str, vid: str,
            sent_at: str | None) -> dict[str, Any]:  # fmt: skip
    props, page = dict(message.properties or {}), context.page or Page()
    traits = message.traits or context.traits or {}  # RudderStack: in the context
    url = web_url(props.get("url")) or web_url(page.url)
    raw: dict[str, Any] = {
        "site": site_key, "vid": vid, "type": "event", "url": url,
        "referrer": web_url(props.get("referrer")) or web_url(page.referrer),
        "title": clean_text(props.get("title") or page.title, rules.MAX_TITLE),
        "ts": epoch_ms(message.timestamp), "sent": epoch_ms(message.sent_at or sent_at),
    }  # fmt: skip
    if kind in ("page", "screen") and message.name:
        props["name"] = message.name
    if kind == "page" and url:
        raw["type"] = "pageview"
        for field in ("url", "referrer", "title"):  # they have columns of their own
            props.pop(field, None)
    elif kind == "identify" and isinstance(traits.get("email"), str):
        raw["type"], raw["traits"] = "identify", person_traits(traits)
    else:
        raw["name"] = clean_text(message.event if kind == "track" else kind, rules.MAX_NAME)
        if kind == "group" and message.group_id not in (None, ""):
            props["group_id"] = str(message.group_id)
    raw["props"] = flat_props(props) or None
    return raw


def stated_consent(context: Context) -> tuple[Purposes | None, str]:
    if context.consent is not None:
        return from_categories(context.consent.category_preferences), "segment"
    managed = context.consent_management
    if managed is not None:
        allowed, denied = managed.allowed_consent_ids, managed.denied_consent_ids
        return from_consent_ids(allowed, denied), "rudderstack"
    return None, "segment"


def person_traits(traits: dict[str, Any]) -> dict[str, str]:
    """Segment's traits as ashiato's: ``firstName``/``lastName`` make ``name``, a
    company object gives its name; other scalars are kept as text."""
    out: dict[str, str] = {}
    first, last = traits.get("firstName"), traits.get("lastName")
    if isinstance(first, str) or isinstance(last, str):
        out["name"] = " ".join(p for p in (first, last) if isinstance(p, str))
    company = traits.get("company")
    if isinstance(company, dict) and isinstance(company.get("name"), str):
        out["company"] = company["name"]
    for key, value in traits.items():
        if len(out) >= rules.MAX_TRAITS or key in out or len(key) > rules.MAX_PROP_KEY:
            continue
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = clean_text(str(value), rules.MAX_TRAIT_VALUE)
            if text and not _CONTROL.search(key):
                out[key] = text
    return out


def flat_props(properties: dict[str, Any]) -> dict[str, Any]:
    """At most ``MAX_PROPS`` scalar properties; nested ones as short JSON text."""
    out: dict[str, Any] = {}
    for key, value in properties.items():
        if len(out) >= rules.MAX_PROPS:
            break
        if not key or len(key) > rules.MAX_PROP_KEY or _CONTROL.search(key):
            continue
        if value is None or isinstance(value, bool | float):
            out[key] = value
        elif isinstance(value, int):
            out[key] = value if abs(value) < rules.MAX_TIMESTAMP else str(value)
        elif isinstance(value, str):
            out[key] = clean_text(value, rules.MAX_PROP_VALUE)
        else:
            text = orjson.dumps(value, default=str).decode()
            if len(text) <= rules.MAX_PROP_VALUE:
                out[key] = clean_text(text, rules.MAX_PROP_VALUE)
    return out


def clean_text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _CONTROL.sub(" ", value[:limit])


def web_url(value: Any) -> str | None:
    """An http(s) URL the beacon rules accept, else None (a bad URL loses the URL only)."""
    if not isinstance(value, str) or len(value) > rules.MAX_URL:
        return None
    if not value.startswith(("http://", "https://")) or _URL_FORBIDDEN.search(value):
        return None
    return value


def epoch_ms(text: str | None) -> int | None:
    """An ISO 8601 time as milliseconds since the epoch; None if absent or unreadable."""
    if not text or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Segment's times are UTC unless they say
    ms = int(moment.timestamp() * 1000)
    return ms if 0 <= ms < rules.MAX_TIMESTAMP else None
