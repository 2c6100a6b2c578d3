"""The change feed: leads created, updated, identified, merged, unmerged, erased."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tracker.api import answers
from tracker.api.auth import require, scope_of
from tracker.api.common import int_param, json_response, services_of
from tracker.api.fields import ChangeSeq, ChangesPageSize
from tracker.scope import visible_changes


async def changes(request: Request) -> Response:
    """Everything after ``cursor`` (a sequence number; start with 0) in order. An
    ``erased`` change is a tombstone: the lead is gone; delete your copy too."""
    key = await require(request, "read")
    services = services_of(request)
    cursor = int_param(request, "cursor", 0, ChangeSeq)
    limit = int_param(request, "limit", 500, ChangesPageSize)
    rows = await services.store.changes_page(after=cursor, limit=limit)
    shown = await visible_changes(services.store, scope_of(key), rows)
    changes = [answers.Change(c.seq, c.lead_id, c.kind, c.at) for c in shown]  # type: ignore[arg-type]
    return json_response(
        answers.ChangesPage(changes, rows[-1].seq if rows else cursor, len(rows) == limit)
    )
