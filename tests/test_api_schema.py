"""The API against its own OpenAPI document, property-based (schemathesis).

Requests are generated from the OpenAPI document (valid ones, and invalid ones that
break exactly one rule of it; schemathesis' coverage and fuzzing phases, deterministic),
sent to a real server, and every answer is checked: never a 5xx, a status the document
lists for that operation, the documented content type and body, schema-breaking input
refused, no answer without the key.

The schema is built at import from ``tracker.api.openapi.document()`` and a test checks
that it is exactly what ``/api/v1/openapi.json`` serves: schemathesis' loader for a
schema known only at run time (``schemathesis.pytest.from_fixture``) fails under
pytest 9 (it sets ``Function._nodeid``).

Two runs: the document as served, and the same document with the ids pinned to leads,
visitors, webhooks and the site this deployment really has, so the generated requests
get past "not found" into merges, timelines, identification and consent.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import LOOPBACK_HOOKS, SITE_ORIGIN, make_deployment
from tests.servers import Server, cli_json
from tracker.api.openapi import document

MAX_EXAMPLES = 25
HOOK_URL = "http://127.0.0.1:9/hook"
"""Webhook deliveries go nowhere: port 9 (discard) on loopback, and the server's HTTP
client is pointed at a proxy there too, so a generated https://random.example is never
looked up, let alone contacted."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    ignored_auth,
]


@dataclass
class Seeded:
    url: str
    key: str
    site_key: str
    leads: list[str]
    visitors: list[str]
    hooks: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def seeded(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp: Path = tmp_path_factory.mktemp("api-schema")
    nowhere = "http://127.0.0.1:9"
    dep = make_deployment(tmp, backend=backend, HTTP_PROXY=nowhere, HTTPS_PROXY=nowhere,
                          ALL_PROXY=nowhere, NO_PROXY="", **LOOPBACK_HOOKS)  # fmt: skip
    scopes = [
        arg for scope in ("read", "identify", "privacy", "admin") for arg in ("--scope", scope)
    ]
    key = cli_json(dep.env, "apikey", "create", "schemathesis", *scopes)["key"]
    server: Server = dep.server.start()
    try:
        yield _seed(dep.url, key, dep.site_key, dep.post)
    finally:
        server.stop()
    logs = server.logs()
    assert "Traceback" not in logs, logs
    assert "webhook delivery round failed" not in logs, logs


def _seed(url: str, key: str, site_key: str, post: Any) -> Seeded:
    headers = {"Authorization": f"Bearer {key}"}
    leads, visitors = [], []
    for n in range(4):
        vid = secrets.token_hex(16)
        page = {"site": site_key, "type": "pageview", "vid": vid, "url": f"{SITE_ORIGIN}/p{n}"}
        assert post(page).status_code == 204
        traits = {"email": f"schema{n}@example.co.jp", "name": f"Schema {n}"}
        identify = {"site": site_key, "vid": vid, "traits": traits}
        response = httpx.post(f"{url}/api/v1/identify", json=identify, headers=headers)
        assert response.status_code == 200, response.text
        leads.append(response.json()["lead"])
        visitors.append(vid)
    hooks = [
        httpx.post(f"{url}/api/v1/webhooks", json={"url": HOOK_URL}, headers=headers).json()["id"]
        for _ in range(2)
    ]
    return Seeded(url, key, site_key, leads, visitors, hooks)


PLACEHOLDERS = {
    "site": ["site-under-test"],
    "lead_id": [f"ld_{n:024x}" for n in range(1, 5)],
    "vid": [f"{n:032x}" for n in range(1, 5)],
    "hook_id": [f"wh_{n:024x}" for n in range(1, 3)],
}
"""Stand-ins the pinned document names (ids are random, the document is built at
import); each test call swaps them for the real ones before sending."""


def _schema(document: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(document)
    # The key is sent with every call, so it is not a generated (and droppable) part; a
    # query parameter the API does not know is ignored, as HTTP APIs do, not refused.
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True,
                                    with_security_parameters=False,
                                    allow_extra_parameters=False)  # fmt: skip
    return schema


def _pin_ids(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every id narrowed to the stand-ins for ones that exist."""
    path_values = {"lead_id": PLACEHOLDERS["lead_id"], "vid": PLACEHOLDERS["vid"],
                   "hook_id": PLACEHOLDERS["hook_id"]}  # fmt: skip
    body_values = {"site": PLACEHOLDERS["site"], "vid": PLACEHOLDERS["vid"],
                   "other": PLACEHOLDERS["lead_id"], "url": [HOOK_URL]}  # fmt: skip

    def pin(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("in") == "path" and node["name"] in path_values:
                node["schema"] = {"type": "string", "enum": path_values[node["name"]]}
            properties = node.get("properties")
            if isinstance(properties, dict):
                for name, values in body_values.items():
                    if name in properties:
                        properties[name] = {"type": "string", "enum": values}
            for value in node.values():
                pin(value)
        elif isinstance(node, list):
            for value in node:
                pin(value)

    pinned = copy.deepcopy(document)
    pin(pinned["paths"])
    return pinned


def _swap_in_real_ids(case: Case, api: Seeded) -> None:
    real = dict(zip(PLACEHOLDERS["site"], [api.site_key], strict=True))
    real |= dict(zip(PLACEHOLDERS["lead_id"], api.leads, strict=True))
    real |= dict(zip(PLACEHOLDERS["vid"], api.visitors, strict=True))
    real |= dict(zip(PLACEHOLDERS["hook_id"], api.hooks, strict=True))
    for name, value in (case.path_parameters or {}).items():
        if isinstance(value, str) and value in real:
            case.path_parameters[name] = real[value]
    if isinstance(case.body, dict):
        for name, value in case.body.items():
            if isinstance(value, str) and value in real:
                case.body[name] = real[value]


def _call_and_check(case: Case, api: Seeded) -> None:
    checks = list(CHECKS)
    cursored = ("/api/v1/leads", "/api/v1/duplicates")
    if case.operation.path in cursored and "cursor" in (case.query or {}):
        # The cursor is opaque: any string fits the document, only ones the API gave
        # out are accepted (a 400 otherwise, which the document lists).
        checks.remove(positive_data_acceptance)
    case.call_and_validate(base_url=api.url, headers=api.headers, checks=checks, timeout=10)


served = _schema(document())
pinned = _schema(_pin_ids(document()))


def test_the_served_document_is_the_one_tested(seeded: Seeded) -> None:
    assert httpx.get(f"{seeded.url}/api/v1/openapi.json").json() == document()


@served.parametrize()
def test_document_holds_for_generated_requests(case: Case, seeded: Seeded) -> None:
    _call_and_check(case, seeded)


@pinned.parametrize()
def test_document_holds_with_real_ids(case: Case, seeded: Seeded) -> None:
    _swap_in_real_ids(case, seeded)
    _call_and_check(case, seeded)
