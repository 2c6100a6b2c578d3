"""Every operation of ``/api/v1``: its scope, parameters, body and answers, as types.

A flat table of declarations: the OpenAPI document (``tracker.api.openapi``) is
generated from it, with the request and response Structs the handlers decode and
encode. Answers every operation can give (400, 401, 403, 429, 503; 413 and 415 with a
body) are added by the generator, not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from msgspec import Meta

from scoring.document import Document
from tracker.api import answers as a
from tracker.api import bodies as b
from tracker.api import fields as f


@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    description: str = ""
    where: str = "query"
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    scope: str
    answers: dict[int, tuple[str, Any]]
    """status -> (description, response type: a Struct, None for no body, or a mapping
    of media type -> type)."""
    body: Any = None
    """The body's Struct (decoded by the handler with ``bodies.read_body``)."""
    params: tuple[Param, ...] = ()


def _path(name: str, type_: Any) -> Param:
    return Param(name, type_, where="path", required=True)


_LEAD = _path("lead_id", f.LeadId)
_NO_LEAD = ("no such lead", a.Error)
_UNKNOWN_SITE = ("unknown site", a.Error)
_NO_SUBJECT = ("no data is held about that subject", a.Error)
_SUBJECT = Annotated[b.SubjectBody, Meta(extra_json_schema=b.SUBJECT_RULE)]
_EXPORT = Annotated[b.ExportBody, Meta(extra_json_schema=b.SUBJECT_RULE)]
_AMBIGUOUS = ("a visitor used by several known people: name the lead", a.Error)

OPERATIONS = (
    Operation("POST", "/api/v1/identify",
              "Link a visitor to a lead from the site's backend (evidence: api)", "identify",
              {200: ("linked", a.Identified), 404: _UNKNOWN_SITE,
               409: ("the visitor has not granted marketing consent", a.Error)},
              body=b.IdentifyBody),
    Operation("POST", "/api/v1/consent",
              "Record consent the site obtained itself (source: api)", "identify",
              {201: ("recorded", a.ConsentRecorded), 404: _UNKNOWN_SITE},
              body=b.ConsentBody),
    Operation("GET", "/api/v1/leads", "Leads changed since a time, cursor-paged", "read",
              {200: ("a page of leads", a.LeadsPage), 404: ("with site: unknown site", a.Error)},
              params=(Param("updated_since", f.Millis, "milliseconds since the epoch"),
                      Param("cursor", str, "next_cursor of the previous page"),
                      Param("limit", f.LeadsPageSize, "page size (default 100)"),
                      Param("grade", f.Grade, "only leads of this grade now (decay applied),"
                            " by score, with their standings; no paging (the first limit)"),
                      Param("sort", f.ScoreSort, "with grade: -score (default) or score"),
                      Param("site", f.SiteKey, "with grade: scored on this site"))),
    Operation("GET", "/api/v1/leads/lookup",
              "Find a lead by email (blind index; full-width and case are normalised)", "read",
              {200: ("the lead", a.LeadDetail), 404: ("no lead has that email", a.Error)},
              params=(Param("email", f.EmailQuery, "the email address", required=True),)),
    Operation("GET", "/api/v1/leads/{lead_id}",
              "A lead with decrypted traits, visitors, first/last touch and consent", "read",
              {200: ("the lead", a.LeadDetail), 404: _NO_LEAD}, params=(_LEAD,)),
    Operation("GET", "/api/v1/leads/{lead_id}/timeline",
              "Every event of every linked visitor, identifications, form submission"
              " records, merges and consent, in order", "read",
              {200: ("the timeline", a.Timeline), 404: _NO_LEAD},
              params=(_LEAD, Param("limit", f.TimelineLimit, "most events (default 10,000)"))),
    Operation("POST", "/api/v1/leads/{lead_id}/merge",
              "Merge another lead into this one (recorded, reversible)", "admin",
              {201: ("merged", a.MergeRecord), 404: _NO_LEAD,
               409: ("already merged, or into itself", a.Error)},
              body=b.MergeBody, params=(_LEAD,)),
    Operation("POST", "/api/v1/leads/{lead_id}/unmerge",
              "Undo the merge of another lead into this one, exactly", "admin",
              {200: ("unmerged", a.MergeRecord), 404: ("no such merge", a.Error),
               409: ("already undone", a.Error)},
              body=b.MergeBody, params=(_LEAD,)),
    Operation("GET", "/api/v1/leads/{lead_id}/score",
              "Score, grade, fit and the points ledger; score is the ledger's engagement"
              " points with decay applied now", "read",
              {200: ("the score", a.LeadScore), 404: _NO_LEAD},
              params=(_LEAD, Param("site", f.SiteKey, "the site (default: where it scores"
                                   " highest)"))),
    Operation("POST", "/api/v1/leads/{lead_id}/score",
              "A manual adjustment: a ledger entry with who (the key) and why", "admin",
              {201: ("recorded: the score after it", a.LeadScore),
               404: ("no such lead, unknown site, or the site has no rules", a.Error)},
              body=b.AdjustBody, params=(_LEAD,)),
    Operation("GET", "/api/v1/scoring/rules", "A site's current scoring rules (versioned)",
              "read", {200: ("the rules", a.ScoringRules),
                       404: ("unknown site, or no rules yet", a.Error)},
              params=(Param("site", f.SiteKey, "the site", required=True),)),
    Operation("PUT", "/api/v1/scoring/rules",
              "New scoring rules for a site (the TOML file's document as JSON); a new"
              " version", "admin", {200: ("kept", a.ScoringRules), 404: _UNKNOWN_SITE},
              body=Document, params=(Param("site", f.SiteKey, "the site", required=True),)),
    Operation("GET", "/api/v1/visitors/{vid}",
              "An (anonymous) visitor's events, links and consent", "read",
              {200: ("the visitor", a.Visitor), 404: ("no such visitor", a.Error)},
              params=(_path("vid", f.VisitorId),
                      Param("limit", f.VisitorEventLimit, "most events (default 1,000)"))),
    Operation("GET", "/api/v1/changes",
              "Change feed: created, updated, identified, merged, unmerged, erased"
              " (tombstones)", "read",
              {200: ("changes after the cursor", a.ChangesPage)},
              params=(Param("cursor", f.ChangeSeq, "last seq seen"),
                      Param("limit", f.ChangesPageSize, "page size (default 500)"))),
    Operation("GET", "/api/v1/duplicates",
              "名寄せ: pairs of leads that are probably one person, with the keys that"
              " matched and a confidence, most certain first", "read",
              {200: ("a page of suggested pairs", a.DuplicatesPage)},
              params=(Param("confidence", f.ConfidenceLevel,
                            "the least confidence listed (default possible: all)"),
                      Param("cursor", str, "next_cursor of the previous page"),
                      Param("limit", f.DuplicatesPageSize, "page size (default 100)"))),
    Operation("POST", "/api/v1/duplicates/dismiss",
              "名寄せ: mark a pair \"not the same\"; it is never suggested again", "admin",
              {201: ("dismissed", a.Dismissal), 404: _NO_LEAD,
               409: ("the two are one lead (merged)", a.Error)},
              body=b.DismissBody),
    Operation("GET", "/api/v1/webhooks", "Registered webhooks", "admin",
              {200: ("webhooks", a.Webhooks)}),
    Operation("POST", "/api/v1/webhooks",
              "Register a webhook; the signing secret is in this response only", "admin",
              {201: ("registered", a.NewWebhook)}, body=b.WebhookBody),
    Operation("DELETE", "/api/v1/webhooks/{hook_id}", "Remove a webhook", "admin",
              {204: ("removed", None), 404: ("no such webhook", a.Error)},
              params=(_path("hook_id", f.HookId),)),
    Operation("POST", "/api/v1/privacy/export",
              "Everything held about a person, decrypted (the access bundle)", "privacy",
              {200: ("the bundle (its id in the Ashiato-Request header)",
                     {"application/json": a.ExportBundle, "text/csv": str}),
               404: _NO_SUBJECT, 409: _AMBIGUOUS},
              body=_EXPORT),
    Operation("POST", "/api/v1/privacy/erase",
              "Erase a person everywhere: rows, data keys, exports, WAL", "privacy",
              {200: ("erased: the completed request with its counts", a.PrivacyRequest),
               404: _NO_SUBJECT, 409: _AMBIGUOUS},
              body=_SUBJECT),
    Operation("GET", "/api/v1/reports/dashboard",
              "A site's traffic and leads per local day, top lists, campaign attribution"
              " and the live count (counts only, no person)", "read",
              {200: ("the dashboard", a.Dashboard), 404: _UNKNOWN_SITE},
              params=(Param("site", f.SiteKey, "the site", required=True),
                      Param("from", f.LocalDate, "the first local day", required=True),
                      Param("to", f.LocalDate, "the last local day (at most 400 days)",
                            required=True),
                      Param("tz", f.TimeZone, "the days' time zone (default UTC)"),
                      Param("page", f.ReportFilter, "only sessions that viewed this path"),
                      Param("source", f.ReportFilter, "only sessions from this utm_source"),
                      Param("medium", f.ReportFilter, "only sessions from this utm_medium"),
                      Param("campaign", f.ReportFilter,
                            "only sessions from this utm_campaign (and its leads)"),
                      Param("limit", f.ReportListSize, "rows per top list (default 10)"))),
    Operation("GET", "/api/v1/privacy/requests", "Data-subject requests, newest first",
              "privacy", {200: ("requests", a.PrivacyRequests)}),
    Operation("GET", "/api/v1/privacy/requests/{request_id}",
              "A data-subject request: status, received, due date (one month), completed",
              "privacy", {200: ("the request", a.PrivacyRequest),
                          404: ("no such request", a.Error)},
              params=(_path("request_id", f.RequestId),)),
)  # fmt: skip
