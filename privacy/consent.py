"""Consent: pure decisions over a visitor's receipts, per site mode and purpose.

Modes: ``opt-in`` (EU: nothing is stored until ``analytics`` is granted) and ``notice``
(Japan: tracking under a published notice; a refusal is honoured). Purposes:
``analytics`` (pseudonymous browsing) and ``marketing`` (linking a visitor to a person,
profiling). Receipts are append-only; the current state is their sum, kept next to
them so the collector reads one row, inside the same transaction that writes the
events it decides on. The server's receipts decide, whatever a beacon claims.

Global Privacy Control (``Sec-GPC: 1`` or the tag's ``gpc``) turns marketing off once,
and keeps it off unless the visitor grants it explicitly afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tracker.storage.records import ConsentMode, ConsentReceipt, ConsentState, Event

POLICY_UNSPECIFIED = "unspecified"


def default_state(mode: ConsentMode) -> ConsentState:
    """What holds before any receipt: everything in notice mode, nothing in opt-in."""
    granted = mode == "notice"
    return ConsentState(granted, granted, gpc=False, receipt_id="", at=0)


def effective(mode: ConsentMode, state: ConsentState | None) -> ConsentState:
    return state if state is not None else default_state(mode)


def allows_analytics(mode: ConsentMode, state: ConsentState | None) -> bool:
    return effective(mode, state).analytics


def allows_marketing(mode: ConsentMode, state: ConsentState | None) -> bool:
    """Linking to a person needs marketing, and analytics too (no history without it)."""
    current = effective(mode, state)
    return current.analytics and current.marketing


def after(mode: ConsentMode, receipt: ConsentReceipt, state: ConsentState | None) -> (
    ConsentState | None
):  # fmt: skip
    """The state once ``receipt`` is applied; None when a GPC signal changes nothing."""
    current = effective(mode, state)
    if receipt.source == "gpc":
        if current.gpc:
            return None  # seen before: a grant made since then stands
        marketing, gpc = False, True
    else:
        marketing = current.marketing if receipt.marketing is None else receipt.marketing
        gpc = current.gpc
    analytics = current.analytics if receipt.analytics is None else receipt.analytics
    return ConsentState(analytics, marketing, gpc, receipt.id, receipt.at)


@dataclass(frozen=True, slots=True)
class Rules:
    """``ConsentRules`` for the store: decisions per site, by the site's mode."""

    modes: Mapping[int, ConsentMode]
    """site id -> consent mode; an unknown site gets the strict mode."""

    def mode(self, site_id: int) -> ConsentMode:
        return self.modes.get(site_id, "opt-in")

    def admit(self, event: Event, state: ConsentState | None) -> bool:
        return allows_analytics(self.mode(event.site_id), state)

    def apply(self, receipt: ConsentReceipt, state: ConsentState | None) -> ConsentState | None:
        return after(self.mode(receipt.site_id), receipt, state)
