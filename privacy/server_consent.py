"""Consent stated by server-side senders, mapped to ashiato's purposes.

Segment's SDKs forward a consent manager's decision as ``context.consent.
categoryPreferences`` (``{"Analytics": true, "Advertising": false}``), RudderStack's
as ``context.consentManagement`` (``allowedConsentIds`` / ``deniedConsentIds``, e.g.
OneTrust's ``C0002``). Categories are named by each site's CMP, so they are mapped by
what they say: a purpose is granted when every category that maps to it is granted,
refused when any is refused, and not stated when none maps to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Purposes = tuple[bool | None, bool | None]
"""(analytics, marketing); None: not stated."""

_ANALYTICS_WORDS = ("analytic", "performance", "statistic", "measurement")
_MARKETING_WORDS = ("advertis", "marketing", "targeting", "personali")
_KNOWN_IDS = {
    "c0002": "analytics",  # OneTrust: performance cookies
    "c0004": "marketing",  # OneTrust: targeting cookies
    "analytics_storage": "analytics",  # Google Consent Mode names
    "ad_storage": "marketing",
    "ad_personalization": "marketing",
}


def purpose_of(category: str) -> str | None:
    name = category.strip().lower()
    if name in _KNOWN_IDS:
        return _KNOWN_IDS[name]
    if any(word in name for word in _ANALYTICS_WORDS):
        return "analytics"
    if any(word in name for word in _MARKETING_WORDS) or name in ("ads", "advertising"):
        return "marketing"
    return None


def from_categories(preferences: Mapping[str, Any]) -> Purposes | None:
    """Segment's ``categoryPreferences``; None when no category names a purpose."""
    stated: dict[str, list[bool]] = {"analytics": [], "marketing": []}
    for category, granted in preferences.items():
        purpose = purpose_of(category) if isinstance(category, str) else None
        if purpose is not None and isinstance(granted, bool):
            stated[purpose].append(granted)
    analytics = all(stated["analytics"]) if stated["analytics"] else None
    marketing = all(stated["marketing"]) if stated["marketing"] else None
    if analytics is None and marketing is None:
        return None
    return analytics, marketing


def from_consent_ids(allowed: Iterable[Any], denied: Iterable[Any]) -> Purposes | None:
    """RudderStack's ``allowedConsentIds`` / ``deniedConsentIds`` (a denial wins)."""
    preferences: dict[str, bool] = {c: True for c in allowed if isinstance(c, str)}
    preferences |= {c: False for c in denied if isinstance(c, str)}
    return from_categories(preferences)
