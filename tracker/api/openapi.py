"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Generated from the operation table (``tracker.api.contract``) and the request and
response Structs the handlers use (``bodies``, ``answers``, ``fields``), with msgspec's
JSON Schema; a test runs schemathesis against it and the running server.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tracker import __version__
from tracker.api.answers import Error
from tracker.api.bodies import NUL_FREE, NUL_FREE_BODY
from tracker.api.contract import OPERATIONS, Operation, Param

_REF = "#/components/schemas/{name}"
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "required": True,
                                "schema": {"type": "integer", "minimum": 1}}}  # fmt: skip
_CHALLENGE = {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}


def _every_answer(op: Operation) -> dict[int, tuple[str, Any, dict[str, Any]]]:
    """The operation's own answers and those any request can get."""
    common: dict[int, tuple[str, Any, dict[str, Any]]] = {
        400: ("bad input", Error, {}),
        401: ("missing or invalid API key", Error, _CHALLENGE),
        403: (f"the key lacks the {op.scope!r} scope", Error, {}),
        429: ("too many requests from this address", Error, _RETRY_AFTER),
        503: ("the database is unavailable or the server overloaded", Error, _RETRY_AFTER),
    }
    if op.body is not None:
        common[413] = ("body larger than 64 KiB", Error, {})
        common[415] = ("the body is not sent as application/json", Error, {})
    own: dict[int, tuple[str, Any, dict[str, Any]]]
    own = {status: (text, model, {}) for status, (text, model) in op.answers.items()}
    if op.path == "/api/v1/privacy/export":
        own[200] = (*own[200][:2], {"Ashiato-Request": {"required": True,
                                                        "schema": {"type": "string"}}})  # fmt: skip
    return dict(sorted((common | own).items()))


def _types() -> list[Any]:
    found: list[Any] = [Error]
    for op in OPERATIONS:
        found += [op.body] if op.body is not None else []
        found += [p.type for p in op.params]
        for _, model in op.answers.values():
            found += list(model.values()) if isinstance(model, dict) else [model]
    return [t for t in found if t is not None]


TYPES = _types()
_SCHEMAS, COMPONENTS = msgspec.json.schema_components(TYPES, ref_template=_REF)
_SCHEMA_OF = [(t, s) for t, s in zip(TYPES, _SCHEMAS, strict=True)]


def _schema(type_: Any) -> dict[str, Any]:
    return next(schema for known, schema in _SCHEMA_OF if known is type_)


def _content(model: Any) -> dict[str, Any]:
    media = model if isinstance(model, dict) else {"application/json": model}
    return {name: {"schema": _schema(t)} for name, t in media.items()}


def _response(description: str, model: Any, headers: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if model is not None:
        answer["content"] = _content(model)
    return answer | ({"headers": headers} if headers else {})


def _parameter(param: Param) -> dict[str, Any]:
    return {"name": param.name, "in": param.where, "required": param.required,
            "schema": _schema(param.type), "description": param.description}  # fmt: skip


def _operation(op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {"summary": op.summary, "security": [{"bearer": []}],
                            "x-scope": op.scope}  # fmt: skip
    if op.params:
        spec["parameters"] = [_parameter(p) for p in op.params]
    if op.body is not None:
        content = {"application/json": {"schema": _schema(op.body) | NUL_FREE_BODY}}
        spec["requestBody"] = {"required": True, "content": content}
    spec["responses"] = {str(s): _response(*answer) for s, answer in _every_answer(op).items()}
    return spec


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return paths


PATHS = _paths()


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ashiato MA / admin API", "version": __version__,
                 "description": "Scopes: read, identify, privacy, admin. "
                 "Send `Authorization: Bearer <key>`; create keys with `ashiato apikey create`."},
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": COMPONENTS | {"NulFree": NUL_FREE},
        },
    }  # fmt: skip


_SERVED = msgspec.json.encode(document())


async def openapi(request: Request) -> Response:
    return Response(_SERVED, media_type="application/json")
