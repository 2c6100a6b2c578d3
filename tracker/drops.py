"""Why an event was not stored.

A dropped event is not an error: the collector answers as if it were stored (so the
answer does not tell a scraper which filter caught it) and counts the reason, a label of
``ashiato_events_dropped_total``. The pipeline, the writer and ``identity`` each decide
some of them; this module has no imports so every one of them can name the reasons.
"""

from __future__ import annotations

import enum


class DropReason(enum.StrEnum):
    """Each value is the metric's ``reason`` label, unchanged since the first release."""

    INVALID = "invalid"
    """The body or an event was malformed (400)."""
    UNKNOWN_SITE = "unknown_site"
    FOREIGN_ORIGIN = "foreign_origin"
    BOT = "bot"
    NO_CONSENT = "no_consent"
    """Refused inside the write transaction by the visitor's recorded consent."""
    OVERLOADED = "overloaded"
    """The write queue was full or closing (503)."""
    RATE_LIMITED = "rate_limited"
    UNSIGNED_IDENTIFY = "unsigned_identify"
    """An identification without the valid signed token the site requires."""
    NO_MARKETING_CONSENT = "no_marketing_consent"
    """An identification from a visitor who has not granted marketing consent."""
    DUPLICATE = "duplicate"
    """A server-side message whose ``messageId`` the site sent before (a retry)."""
