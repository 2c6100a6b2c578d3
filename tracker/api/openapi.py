"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to the handlers so it says exactly what they accept and answer;
a test runs schemathesis against it and the running server.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tracker import __version__
from tracker.api.common import json_response
from tracker.api.webhooks import EVENT_TYPES

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_LEAD_ID = {"type": "string", "pattern": "^ld_[0-9a-f]{24}$"}
_VID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_SITE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
_OBJECT = {"type": "object"}


_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema or _OBJECT}}}  # fmt: skip


def _operation(summary: str, scope: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    errors = {"400": _error("bad input"), "401": _error("missing or invalid API key"),
              "403": _error(f"the key lacks the {scope!r} scope")}  # fmt: skip
    if "requestBody" in extra:
        errors |= {"413": _error("body larger than 64 KiB"),
                   "415": _error("the body is not sent as application/json")}  # fmt: skip
    return {"summary": summary, "security": [{"bearer": []}],
            "x-scope": scope, "responses": {**responses, **errors}, **extra}  # fmt: skip


def _query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> (
    dict[str, Any]
):  # fmt: skip
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}  # fmt: skip


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_TEXT_CHAR = "[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]"
"""Not a control character (tab and line breaks are allowed), as the beacon rules say."""
_PLAIN = f"^{_TEXT_CHAR}*$"
_EMAIL = {"type": "string", "format": "email", "maxLength": 254,
          "pattern": f"^{_TEXT_CHAR}*[@＠]{_TEXT_CHAR}*$"}  # fmt: skip
_TRAITS = {"type": "object", "required": ["email"], "maxProperties": 32,
           "properties": {"email": _EMAIL},
           "propertyNames": {"maxLength": 64, "pattern": _PLAIN},
           "additionalProperties": {"type": ["string", "null"], "maxLength": 1000,
                                    "pattern": _PLAIN}}  # fmt: skip
_CONSENT = {"type": "object", "minProperties": 1,
            "properties": {"analytics": {"type": "boolean"}, "marketing": {"type": "boolean"}},
            "additionalProperties": False}  # fmt: skip
_POLICY = {"type": ["string", "null"], "maxLength": 64, "pattern": _PLAIN}
_REASON = {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 500}
_SUBJECT: dict[str, Any] = {"type": "object",
            "properties": {"email": {"type": "string", "minLength": 1, "maxLength": 254},
                           "lead": _LEAD_ID, "visitor": _VID},
            "oneOf": [{"required": ["email"]}, {"required": ["lead"]},
                      {"required": ["visitor"]}]}  # fmt: skip
_MS = {"type": "integer", "minimum": 0, "maximum": 2**62}
_HOOK_URL = {"type": "string", "format": "uri", "maxLength": 2000,
             "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00-\\x20\\x7f]+$"}  # fmt: skip

PATHS: dict[str, Any] = {
    "/api/v1/identify": {"post": _operation(
        "Link a visitor to a lead from the site's backend (evidence: api)", "identify",
        {"200": _ok("linked"), "404": _error("unknown site"),
         "409": _error("the visitor has not granted marketing consent")},
        requestBody=_body({"type": "object", "required": ["site", "vid", "traits"],
                           "properties": {"site": _SITE, "vid": _VID,
                                          "traits": _TRAITS,
                                          "consent": {**_CONSENT, "type": ["object", "null"]},
                                          "policy": _POLICY}}),
    )},
    "/api/v1/consent": {"post": _operation(
        "Record consent the site obtained itself (source: api)", "identify",
        {"201": _ok("recorded"), "404": _error("unknown site")},
        requestBody=_body({"type": "object", "required": ["site", "vid", "consent"],
                           "properties": {"site": _SITE, "vid": _VID,
                                          "consent": _CONSENT, "policy": _POLICY}}),
    )},
    "/api/v1/leads": {"get": _operation(
        "Leads changed since a time, cursor-paged", "read", {"200": _ok("a page of leads")},
        parameters=[_query("updated_since", _MS, "milliseconds since the epoch"),
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                    _query("limit", _LIMIT, "page size (default 100)")],
    )},
    "/api/v1/leads/lookup": {"get": _operation(
        "Find a lead by email (blind index; full-width and case are normalised)", "read",
        {"200": _ok("the lead"), "404": _error("no lead has that email")},
        parameters=[_query("email", {"type": "string", "minLength": 1, "maxLength": 254,
                                     "pattern": "\\S"},
                           "the email address", required=True)],
    )},
    "/api/v1/leads/{lead_id}": {"get": _operation(
        "A lead with decrypted traits, visitors, first/last touch and consent", "read",
        {"200": _ok("the lead"), "404": _error("no such lead")},
        parameters=[_path("lead_id", _LEAD_ID)],
    )},
    "/api/v1/leads/{lead_id}/timeline": {"get": _operation(
        "Every event of every linked visitor, identifications, form submission records, merges"
        " and consent, in order",
        "read", {"200": _ok("the timeline"), "404": _error("no such lead")},
        parameters=[_path("lead_id", _LEAD_ID),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 50000},
                           "most events (default 10,000)")],
    )},
    "/api/v1/leads/{lead_id}/merge": {"post": _operation(
        "Merge another lead into this one (recorded, reversible)", "admin",
        {"201": _ok("merged"), "404": _error("no such lead"),
         "409": _error("already merged, or into itself")},
        parameters=[_path("lead_id", _LEAD_ID)],
        requestBody=_body({"type": "object", "required": ["other", "reason"],
                           "properties": {"other": _LEAD_ID, "reason": _REASON}}),
    )},
    "/api/v1/leads/{lead_id}/unmerge": {"post": _operation(
        "Undo the merge of another lead into this one, exactly", "admin",
        {"200": _ok("unmerged"), "404": _error("no such merge"),
         "409": _error("already undone")},
        parameters=[_path("lead_id", _LEAD_ID)],
        requestBody=_body({"type": "object", "required": ["other", "reason"],
                           "properties": {"other": _LEAD_ID, "reason": _REASON}}),
    )},
    "/api/v1/visitors/{vid}": {"get": _operation(
        "An (anonymous) visitor's events, links and consent", "read",
        {"200": _ok("the visitor"), "404": _error("no such visitor")},
        parameters=[_path("vid", _VID),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 10000},
                           "most events (default 1,000)")],
    )},
    "/api/v1/changes": {"get": _operation(
        "Change feed: created, updated, identified, merged, unmerged, erased (tombstones)",
        "read", {"200": _ok("changes after the cursor")},
        parameters=[_query("cursor", _MS, "last seq seen"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 5000},
                           "page size (default 500)")],
    )},
    "/api/v1/webhooks": {
        "get": _operation("Registered webhooks", "admin", {"200": _ok("webhooks")}),
        "post": _operation(
            "Register a webhook; the signing secret is in this response only", "admin",
            {"201": _ok("registered")},
            requestBody=_body({"type": "object", "required": ["url"],
                               "properties": {"url": _HOOK_URL,
                                              "events": {"type": "array", "minItems": 1,
                                                         "items": {"enum": list(EVENT_TYPES)}}}}),
        ),
    },
    "/api/v1/webhooks/{hook_id}": {"delete": _operation(
        "Remove a webhook", "admin",
        {"204": {"description": "removed"}, "404": _error("no such webhook")},
        parameters=[_path("hook_id", {"type": "string"})],
    )},
    "/api/v1/privacy/export": {"post": _operation(
        "Everything held about a person, decrypted (the access bundle)", "privacy",
        {"200": {"description": "the bundle",
                 "content": {"application/json": {"schema": _OBJECT},
                             "text/csv": {"schema": {"type": "string"}}}},
         "404": _error("no data is held about that subject"),
         "409": _error("a visitor used by several known people: name the lead")},
        requestBody=_body(_SUBJECT | {"properties": _SUBJECT["properties"] | {
            "format": {"enum": ["json", "csv"]}}}),
    )},
    "/api/v1/privacy/erase": {"post": _operation(
        "Erase a person everywhere: rows, data keys, exports, WAL", "privacy",
        {"200": _ok("erased: the completed request with its counts"),
         "404": _error("no data is held about that subject"),
         "409": _error("a visitor used by several known people: name the lead")},
        requestBody=_body(_SUBJECT),
    )},
    "/api/v1/privacy/requests": {"get": _operation(
        "Data-subject requests, newest first", "privacy", {"200": _ok("requests")},
    )},
    "/api/v1/privacy/requests/{request_id}": {"get": _operation(
        "A data-subject request: status, received, due date (one month), completed",
        "privacy", {"200": _ok("the request"), "404": _error("no such request")},
        parameters=[_path("request_id", {"type": "string", "maxLength": 64})],
    )},
}  # fmt: skip


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ashiato MA / admin API", "version": __version__,
                 "description": "Scopes: read, identify, privacy, admin. "
                 "Send `Authorization: Bearer <key>`; create keys with `ashiato apikey create`."},
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR},
        },
    }  # fmt: skip


async def openapi(request: Request) -> Response:
    return json_response(document())
