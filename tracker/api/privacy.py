"""Data-subject requests over the API (privacy scope): export, erase, request status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from privacy import export
from privacy.dsr import Subject
from tracker.api import answers
from tracker.api.auth import require, scope_of
from tracker.api.bodies import ExportBody, SubjectBody, read_body
from tracker.api.common import json_response, services_of
from tracker.api.fields import LEAD_ID, REQUEST_ID, VISITOR_ID
from tracker.errors import NotFound
from tracker.scope import sees_request, subject_in
from tracker.services import Services
from tracker.storage.records import ApiKey, PrivacyRequest


async def _subject(services: Services, body: SubjectBody, key: ApiKey) -> Subject:
    """The person the body names, as the key sees them (``tracker.scope``)."""
    found = await _named(services, body)
    return await subject_in(services.store, scope_of(key), found)


async def _named(services: Services, body: SubjectBody) -> Subject:
    named = {k: v for k, v in (("email", body.email), ("lead", body.lead),
                               ("visitor", body.visitor)) if v is not None}  # fmt: skip
    malformed = {"lead": LEAD_ID, "visitor": VISITOR_ID}
    if any(not malformed[k].fullmatch(v) for k, v in named.items() if k in malformed):
        raise NotFound("no data is held about that subject")  # as for a well-formed unknown id
    return await services.requests.find(**named)


def request_view(req: PrivacyRequest) -> answers.PrivacyRequest:
    return answers.PrivacyRequest(req.id, req.kind, req.status, req.subject, req.received_at,
                                  req.due_at, req.completed_at, req.detail)  # fmt: skip


async def export_request(request: Request) -> Response:
    """Everything held about the person, decrypted: JSON (default) or CSV."""
    key = await require(request, "privacy")
    services = services_of(request)
    body = await read_body(request, ExportBody)
    fmt = body.format
    subject = await _subject(services, body, key)
    req, bundle = await services.requests.export(subject, actor=f"apikey:{key.id}",
                                                 on_sites=scope_of(key).ids)  # fmt: skip
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    return Response(
        export.render(bundle, fmt), media_type=media, headers={"Ashiato-Request": req.id}
    )


async def erase_request(request: Request) -> Response:
    """Erase the person everywhere (rows, keys, exports, WAL); answer with the counts. A
    site-limited key erases a person it sees, whole: every lead merged into theirs and
    every site's part (one person, one data key; nothing of them may stay behind)."""
    key = await require(request, "privacy")
    services = services_of(request)
    subject = await _named(services, await read_body(request, SubjectBody))
    await subject_in(services.store, scope_of(key), subject)  # not found unless seen
    req, _ = await services.requests.erase(subject, actor=f"apikey:{key.id}")
    done = await services.store.request(req.id)
    assert done is not None
    return json_response(request_view(done))


async def request_status(request: Request) -> Response:
    key = await require(request, "privacy")
    store = services_of(request).store
    request_id = request.path_params["request_id"]
    req = await store.request(request_id) if REQUEST_ID.fullmatch(request_id) else None
    if req is None or not await sees_request(store, scope_of(key), req.subject):
        raise NotFound("request not found")
    return json_response(request_view(req))


async def request_list(request: Request) -> Response:
    key = await require(request, "privacy")
    store, scope = services_of(request).store, scope_of(key)
    reqs = [r for r in await store.requests(limit=500)
            if await sees_request(store, scope, r.subject)]  # fmt: skip
    return json_response(answers.PrivacyRequests([request_view(r) for r in reqs]))
