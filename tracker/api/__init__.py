"""The MA / admin REST API under ``/api/v1`` (one module per resource)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from tracker.api import (
    changes,
    duplicates,
    identify,
    leads,
    openapi,
    privacy,
    reports,
    scoring,
    visitors,
    webhooks,
)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/openapi.json", openapi.openapi, methods=["GET"]),
        Route("/api/v1/identify", identify.identify_api, methods=["POST"]),
        Route("/api/v1/consent", identify.consent_api, methods=["POST"]),
        Route("/api/v1/leads", leads.list_leads, methods=["GET"]),
        Route("/api/v1/leads/lookup", leads.lookup, methods=["GET"]),
        Route("/api/v1/leads/{lead_id}", leads.detail, methods=["GET"]),
        Route("/api/v1/leads/{lead_id}/timeline", leads.timeline, methods=["GET"]),
        Route("/api/v1/leads/{lead_id}/merge", leads.merge, methods=["POST"]),
        Route("/api/v1/leads/{lead_id}/unmerge", leads.unmerge, methods=["POST"]),
        Route("/api/v1/leads/{lead_id}/score", scoring.lead_score, methods=["GET", "POST"]),
        Route("/api/v1/scoring/rules", scoring.rules, methods=["GET", "PUT"]),
        Route("/api/v1/visitors/{vid}", visitors.visitor, methods=["GET"]),
        Route("/api/v1/changes", changes.changes, methods=["GET"]),
        Route("/api/v1/duplicates", duplicates.listing, methods=["GET"]),
        Route("/api/v1/duplicates/dismiss", duplicates.dismiss, methods=["POST"]),
        Route("/api/v1/webhooks", webhooks.collection, methods=["GET", "POST"]),
        Route("/api/v1/webhooks/{hook_id}", webhooks.delete, methods=["DELETE"]),
        Route("/api/v1/privacy/export", privacy.export_request, methods=["POST"]),
        Route("/api/v1/privacy/erase", privacy.erase_request, methods=["POST"]),
        Route("/api/v1/reports/dashboard", reports.dashboard, methods=["GET"]),
        Route("/api/v1/privacy/requests", privacy.request_list, methods=["GET"]),
        Route("/api/v1/privacy/requests/{request_id}", privacy.request_status, methods=["GET"]),
    ]
