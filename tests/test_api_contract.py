"""The API contract's one source: what the document says is what the Structs decode and
encode, and the response check schemathesis runs (tests/test_api_schema.py) has
something to check against."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi.checks import JsonSchemaError

from tracker.api.bodies import IdentifyBody, MergeBody, SubjectBody, decode_body
from tracker.api.openapi import COMPONENTS, PATHS, document
from tracker.http_errors import BadRequest

VID = "0" * 32


def _answers() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (path, method, status, media["schema"])
        for path, methods in PATHS.items()
        for method, operation in methods.items()
        for status, answer in operation["responses"].items()
        for name, media in answer.get("content", {}).items()
        if name == "application/json"
    ]


def test_every_json_answer_names_a_model_with_its_fields() -> None:
    for path, method, status, schema in _answers():
        name = schema["$ref"].rsplit("/", 1)[-1]
        model = COMPONENTS[name]
        assert model["type"] == "object", (method, path, status)
        assert model["properties"], (method, path, status)
        if status.startswith("2"):
            assert name != "Error", (method, path, status)


def test_429_and_503_are_documented_everywhere_with_retry_after() -> None:
    for methods in PATHS.values():
        for operation in methods.values():
            for status in ("429", "503"):
                assert operation["responses"][status]["headers"]["Retry-After"]["required"]


def _response(status: int, body: Any, path: str) -> httpx.Response:
    response = httpx.Response(
        status, json=body, request=httpx.Request("GET", f"http://127.0.0.1{path}")
    )
    response.read()
    response.elapsed = datetime.timedelta(0)  # read by schemathesis' report
    return response


def test_the_response_check_catches_a_body_that_breaks_its_model() -> None:
    operation = schemathesis.openapi.from_dict(document())["/api/v1/changes"]["GET"]
    page = {"changes": [{"seq": 1, "lead": "ld_x", "kind": "created", "at": 5}],
            "cursor": 1, "more": False}  # fmt: skip
    operation.validate_response(_response(200, page, "/api/v1/changes"))
    wrong_kind = {"changes": [{"seq": 1, "kind": "bought"}], "cursor": 1, "more": False}
    for broken in ({**page, "cursor": "1"}, {**page, "more": None}, wrong_kind):
        with pytest.raises((JsonSchemaError, FailureGroup)):
            operation.validate_response(_response(200, broken, "/api/v1/changes"))


@pytest.mark.parametrize(
    ("body", "model", "named"),
    [
        (b'{"site": 5, "vid": "' + VID.encode() + b'", "traits": {}}', IdentifyBody, "site"),
        (b'{"site": "s", "vid": "0", "traits": {}}', IdentifyBody, "vid"),
        (b'{"site": "s", "vid": "' + VID.encode() + b'"}', IdentifyBody, "traits"),
        (b'{"other": "ld_x"}', MergeBody, "reason"),
        (b'{"other": "ld_x", "reason": " "}', MergeBody, "reason"),
        (b'{"email": "a@b.jp", "lead": "ld_x"}', SubjectBody, "exactly one"),
        (b'{"other": "ld_x", "reason": "r", "x": "\\u0000"}', MergeBody, "NUL"),
        (b"[]", MergeBody, "JSON object"),
        (b"{", MergeBody, "not valid JSON"),
    ],
)
def test_a_body_that_breaks_its_model_is_a_400_naming_the_field(
    body: bytes, model: type[Any], named: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_body(body, model)
    assert named in refused.value.message


def test_a_nul_escaped_as_text_is_no_nul() -> None:
    body = decode_body(b'{"other": "ld_x", "reason": "a \\\\u0000 b"}', MergeBody)
    assert body.reason == "a \\u0000 b"
