"""The change feed: leads created, updated, identified, merged, unmerged, erased."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tracker.api.auth import require
from tracker.api.common import int_param, json_response, services_of


async def changes(request: Request) -> Response:
    """Everything after ``cursor`` (a sequence number; start with 0) in order. An
    ``erased`` change is a tombstone: the lead is gone; delete your copy too."""
    await require(request, "read")
    services = services_of(request)
    cursor = int_param(request, "cursor", 0, low=0, high=2**62)
    limit = int_param(request, "limit", 500, low=1, high=5000)
    rows = await services.store.changes_page(after=cursor, limit=limit)
    return json_response(
        {
            "changes": [
                {"seq": c.seq, "lead": c.lead_id, "kind": c.kind, "at": c.at} for c in rows
            ],
            "cursor": rows[-1].seq if rows else cursor,
            "more": len(rows) == limit,
        }
    )
