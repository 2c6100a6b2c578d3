"""The web console at ``/admin``: server-rendered pages for legal, admin and marketing.

One module per area: ``auth`` (sign-in, re-authentication, the user's account),
``home``, ``legal`` and ``records`` (legal), ``sites``, ``access`` and ``users``
(admin); ``accounts`` and ``sessions`` hold the rules; ``web`` what pages share.
"""

from __future__ import annotations

from functools import cache
from hashlib import sha256
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

ASSETS = {"console.css": "text/css; charset=utf-8",
          "console.js": "application/javascript; charset=utf-8",
          "icon.svg": "image/svg+xml",
          "marketing.css": "text/css; charset=utf-8"}  # fmt: skip
GET, POST, BOTH = ["GET"], ["POST"], ["GET", "POST"]


@cache
def _asset(name: str) -> tuple[bytes, str]:
    body = (resources.files("tracker.console") / "static" / name).read_bytes()
    return body, '"' + sha256(body).hexdigest()[:20] + '"'


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response(b'{"error":"not found"}', 404, media_type="application/json")
    body, etag = _asset(name)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300",
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=ASSETS[name], headers=headers)


async def to_home(request: Request) -> Response:
    return RedirectResponse("/admin/", 308)


def routes() -> list[BaseRoute]:
    # The pages (Jinja2, Babel, their catalogs) load with the routes, not with the
    # package: the CLI imports `accounts` without them.
    from tracker.console import (
        access,
        auth,
        dashboard,
        home,
        leads,
        legal,
        people,
        records,
        sites,
        users,
    )

    return [
        Route("/admin", to_home, methods=GET),
        Route("/admin/", home.home, methods=GET),
        Route("/admin/static/{name}", static, methods=GET),
        Route("/admin/signin", auth.signin_page, methods=BOTH),
        Route("/admin/signout", auth.signout, methods=POST),
        Route("/admin/signout/everywhere", auth.signout_everywhere, methods=POST),
        Route("/admin/confirm", auth.confirm, methods=BOTH),
        Route("/admin/account", auth.account, methods=BOTH),
        # legal
        Route("/admin/requests", legal.requests_page, methods=BOTH),
        Route("/admin/requests/{request_id}", legal.request_page, methods=GET),
        Route("/admin/requests/{request_id}/export", legal.request_export, methods=POST),
        Route("/admin/requests/{request_id}/erase", legal.request_erase, methods=POST),
        Route("/admin/consent", legal.consent_page, methods=BOTH),
        Route("/admin/retention", records.retention_page, methods=GET),
        Route("/admin/audit", records.audit_page, methods=BOTH),
        Route("/admin/ledger", records.ledger_page, methods=GET),
        # admin
        Route("/admin/sites", sites.sites_page, methods=BOTH),
        Route("/admin/sites/{site_key}", sites.site_page, methods=BOTH),
        Route("/admin/sites/{site_key}/remove", sites.site_remove, methods=POST),
        Route("/admin/keys", access.keys_page, methods=BOTH),
        Route("/admin/keys/{key_id}/revoke", access.key_revoke, methods=POST),
        Route("/admin/webhooks", access.webhooks_page, methods=BOTH),
        Route("/admin/webhooks/{hook_id}", access.webhook_page, methods=GET),
        Route("/admin/webhooks/{hook_id}/{action}", access.webhook_action, methods=POST),
        Route("/admin/users", users.users_page, methods=BOTH),
        # marketing
        Route("/admin/dashboard", dashboard.dashboard_page, methods=GET),
        Route("/admin/leads", leads.leads_page, methods=GET),
        Route("/admin/leads/hot", leads.hot_page, methods=GET),
        Route("/admin/leads/hot.csv", leads.hot_csv, methods=GET),
        Route("/admin/duplicates", leads.duplicates_page, methods=GET),
        Route("/admin/duplicates/{action}", leads.duplicates_action, methods=POST),
        Route("/admin/leads/{lead_id}", people.lead_page, methods=GET),
        Route("/admin/leads/{lead_id}/timeline", people.lead_timeline, methods=GET),
        Route("/admin/leads/{lead_id}/merge", people.lead_merge, methods=POST),
        Route("/admin/leads/{lead_id}/unmerge", people.lead_unmerge, methods=POST),
        Route("/admin/visitors/{vid}", people.visitor_page, methods=GET),
    ]
