"""Legal's pages: the data-subject request queue, export and erasure, consent proof.

Every action goes through ``privacy.dsr`` exactly as the API and the CLI do; the console
only adds the queue (a request received now, acted on later), the typed confirmation
before an erasure, and re-authentication within 5 minutes before either.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from privacy import export
from privacy.dsr import RequestKind, RequestStatus, Subject
from tracker.console.web import Console, page
from tracker.errors import Invalid, NotFound
from tracker.scope import sees_request, subject_in
from tracker.storage.records import PrivacyRequest

SUBJECT_KINDS = ("email", "lead", "visitor")
MAX_QUERY = 254


def queue_order(requests: list[PrivacyRequest]) -> list[PrivacyRequest]:
    """Open requests first, earliest due date first (so overdue ones lead); then the
    finished ones, latest first."""
    open_ = sorted((r for r in requests if r.status == RequestStatus.RECEIVED),
                   key=lambda r: r.due_at)  # fmt: skip
    done = sorted((r for r in requests if r.status != RequestStatus.RECEIVED),
                  key=lambda r: -(r.completed_at or r.received_at))  # fmt: skip
    return open_ + done


async def find_subject(console: Console, by: str, value: str) -> Subject:
    """The person named, as this user sees them (a site-limited user: on their sites;
    elsewhere not found, as an unknown person)."""
    value = value.strip()
    if by not in SUBJECT_KINDS or not value or len(value) > MAX_QUERY:
        raise Invalid("name the person by email, lead id or visitor id")
    found = await console.services.requests.find(**{by: value})
    return await subject_in(console.services.store, console.scope, found)


@page("legal")
async def requests_page(console: Console) -> Response:
    if console.request.method == "POST":
        fields = console.form
        kind = fields.get("kind")
        if kind not in (RequestKind.EXPORT, RequestKind.ERASE):
            raise Invalid("choose export or erasure")
        subject = await find_subject(console, fields.get("by"), fields.get("value"))
        received = await console.services.requests.receive(
            RequestKind(kind), subject, actor=console.actor
        )
        return RedirectResponse(f"/admin/requests/{received.id}", 303)
    store = console.services.store
    found = [r for r in await store.requests(limit=1000)
             if await sees_request(store, console.scope, r.subject)]  # fmt: skip
    return console.render("requests.html", requests=queue_order(found))


async def _request(console: Console) -> PrivacyRequest:
    request_id = console.request.path_params["request_id"]
    store = console.services.store
    found = await store.request(request_id) if len(request_id) < 64 else None
    if found is None or not await sees_request(store, console.scope, found.subject):
        raise NotFound("request not found")
    return found


@page("legal")
async def request_page(console: Console) -> Response:
    return console.render("request.html", req=await _request(console), message=None)


def _needs_confirmation(console: Console, req: PrivacyRequest) -> Response | None:
    if console.signed.confirmed_recently(console.clock.now_ms):
        return None
    return RedirectResponse(f"/admin/confirm?next=/admin/requests/{req.id}", 303)


@page("legal")
async def request_export(console: Console) -> Response:
    """The bundle as a download; the request completes once it is built."""
    req = await _request(console)
    if req.kind != RequestKind.EXPORT or req.status != RequestStatus.RECEIVED:
        raise Invalid("this request is not an export waiting to be done")
    if (later := _needs_confirmation(console, req)) is not None:
        return later
    fmt = "csv" if console.form.get("format") == "csv" else "json"
    found = await console.services.requests.find_ref(req.subject)
    subject = await subject_in(console.services.store, console.scope, found)
    done, bundle = await console.services.requests.export(
        subject, actor=console.actor, request=req, on_sites=console.scope.ids
    )
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    return Response(
        export.render(bundle, fmt),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="ashiato-{done.id}.{fmt}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@page("legal")
async def request_erase(console: Console) -> Response:
    """Erase after the user typed the subject's reference (a deliberate act)."""
    req = await _request(console)
    if req.kind != RequestKind.ERASE or req.status != RequestStatus.RECEIVED:
        raise Invalid("this request is not an erasure waiting to be done")
    if console.form.get("confirm").strip() != req.subject:
        return console.render("request.html", 400, req=req, message="confirm")
    if (later := _needs_confirmation(console, req)) is not None:
        return later
    try:
        subject = await console.services.requests.find_ref(req.subject)
    except NotFound:  # erased meanwhile (another request, retention)
        subject = Subject(req.subject, (), (), ())
    await console.services.requests.erase(subject, actor=console.actor, request=req)
    return RedirectResponse(f"/admin/requests/{req.id}", 303)


@page("legal")
async def consent_page(console: Console) -> Response:
    """A person's consent receipts: the proof (each viewing is audited). An email is
    looked up by POST only, so it never stands in an address (a proxy's access log);
    lead and visitor ids, pseudonymous, may come in the query (links from other pages)."""
    if console.request.method == "POST":
        by, value = console.form.get("by", "email"), console.form.get("q")
    else:
        query = console.request.query_params
        by, value = query.get("by", "email"), query.get("q", "")
        if by == "email":
            value = ""
    if not value:
        return console.render("consent.html", by=by, q="", subject=None, receipts=[])
    subject = await find_subject(console, by, value)
    vids = list(dict.fromkeys([*(k.vid for k in subject.links), *subject.whole_vids]))
    receipts = console.scope.only(await console.services.store.consent_receipts_of(vids))
    await console.audit("console.consent.read", subject.ref, receipts=len(receipts))
    sites = {s.id: s.name for s in await console.services.store.list_sites()}
    return console.render("consent.html", by=by, q=value, subject=subject,
                          receipts=sorted(receipts, key=lambda r: r.at), sites=sites)  # fmt: skip
