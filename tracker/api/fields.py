"""The API's constrained values, declared once: ids, sizes, texts.

Each is an ``Annotated`` type: msgspec checks a request body against it and writes its
JSON Schema, and the handlers' own checks (path ids, query integers) are read off the
same declaration, so the document, the decoder and the handlers cannot disagree.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from msgspec import Meta


def whole(regex: str) -> str:
    """``regex`` as a whole-string pattern for JSON Schema *and* Python: ``$`` alone also
    matches before a trailing newline in Python (msgspec searches with ``re``)."""
    return f"^(?:{regex})(?!\\n)$"


LEAD_ID = re.compile(r"ld_[0-9a-f]{24}")
VISITOR_ID = re.compile(r"[0-9a-f]{32}")
SITE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
HOOK_ID = re.compile(r"wh_[0-9a-f]{24}")
REQUEST_ID = re.compile(r"pr_[0-9a-f]{24}")

LeadId = Annotated[str, Meta(pattern=whole(LEAD_ID.pattern), description="a lead id")]
VisitorId = Annotated[
    str, Meta(pattern=whole(VISITOR_ID.pattern), description="a visitor id (32 lowercase hex)")
]
SiteKey = Annotated[str, Meta(pattern=whole(SITE_KEY.pattern), description="a site key")]
HookId = Annotated[str, Meta(pattern=whole(HOOK_ID.pattern), description="a webhook id")]
RequestId = Annotated[str, Meta(pattern=whole(REQUEST_ID.pattern), max_length=64)]


def _looked_up(pattern: re.Pattern[str]) -> Meta:
    """An id in a body that is looked up as it is: a malformed one is answered 404 like
    an unknown one (nothing tells which ids exist), so only its length is enforced; the
    pattern is documented."""
    return Meta(min_length=1, extra_json_schema={"pattern": whole(pattern.pattern)})


LeadRef = Annotated[str, _looked_up(LEAD_ID), Meta(max_length=64)]
VisitorRef = Annotated[str, _looked_up(VISITOR_ID), Meta(max_length=254)]

Millis = Annotated[int, Meta(ge=0, le=2**62, description="milliseconds since the epoch")]
ChangeSeq = Annotated[int, Meta(ge=0, le=2**62, description="a change sequence number")]
LeadsPageSize = Annotated[int, Meta(ge=1, le=500)]
ChangesPageSize = Annotated[int, Meta(ge=1, le=5000)]
TimelineLimit = Annotated[int, Meta(ge=1, le=50_000)]
DuplicatesPageSize = Annotated[int, Meta(ge=1, le=1000)]
VisitorEventLimit = Annotated[int, Meta(ge=1, le=10_000)]
Grade = Literal["hot", "warm", "cool"]
ScoreSort = Literal["-score", "score"]


def bounds(number: Any) -> tuple[int, int]:
    """(low, high) of an ``Annotated[int, Meta(ge=, le=)]`` above."""
    meta = get_args(number)[1]
    return meta.ge, meta.le


_TEXT_CHAR = "[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]"
"""Not a control character (tab and line breaks are allowed), as the beacon rules say."""
PLAIN = f"^{_TEXT_CHAR}*$"
Reason = Annotated[str, Meta(min_length=1, max_length=500, pattern="\\S")]
Policy = Annotated[str, Meta(max_length=64, pattern=PLAIN)]
EmailQuery = Annotated[str, Meta(min_length=3, max_length=254,
                                 pattern="^[!-~]+[@＠][!-~]*[!-?A-~]$")]  # fmt: skip
"""Documented as printable ASCII around an ``@`` (or ``＠``); the lookup also takes what
NFKC folds to that, and trims (``tracker.beacon.is_email_address``)."""
SubjectText = Annotated[str, Meta(min_length=1, max_length=254)]
_HTTP_URL = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00-\\x20\\x7f]+$"
_URL_SCHEMA = {"format": "uri", "pattern": _HTTP_URL}
HookUrl = Annotated[str, Meta(min_length=1, max_length=2000, extra_json_schema=_URL_SCHEMA)]
Traits = Annotated[
    dict[str, str | None],
    Meta(max_length=32, extra_json_schema={
        "required": ["email"],
        "properties": {"email": {"type": "string", "format": "email", "maxLength": 254,
                                 "pattern": f"^{_TEXT_CHAR}*[@＠]{_TEXT_CHAR}*$"}},
        "propertyNames": {"maxLength": 64, "pattern": PLAIN},
        "additionalProperties": {"type": ["string", "null"], "maxLength": 1000, "pattern": PLAIN},
    }, description="email (required) and other traits; the beacon rules apply"),
]  # fmt: skip

EventType = Literal["lead.created", "lead.identified", "lead.updated", "lead.merged",
                    "lead.unmerged", "lead.erased", "lead.hot"]  # fmt: skip
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)

ConfidenceLevel = Literal["certain", "likely", "possible"]
"""名寄せ: how sure a suggested pair is one person (``identity.duplicates``)."""
CONFIDENCE_LEVELS: tuple[ConfidenceLevel, ...] = get_args(ConfidenceLevel)

LocalDate = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]
TimeZone = Annotated[str, Meta(max_length=64, description="an IANA time zone, e.g. Asia/Tokyo")]
ReportFilter = Annotated[str, Meta(max_length=1000, pattern=r"^[^\x00]*$")]
ReportListSize = Annotated[int, Meta(ge=1, le=100)]
