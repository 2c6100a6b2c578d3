"""Consent: pure decisions over a visitor's receipts, per site mode and purpose.

Modes: ``opt-in`` (EU: nothing is stored until ``analytics`` is granted) and ``notice``
(Japan: tracking under a published notice; a refusal is honoured). Purposes:
``analytics`` (pseudonymous browsing) and ``marketing`` (linking a visitor to a person,
profiling). Receipts are append-only; the current state is their sum, kept next to
them so the collector reads one row, inside the same transaction that writes the
events it decides on. The server's receipts decide, whatever a beacon claims.

Global Privacy Control (``Sec-GPC: 1`` or the tag's ``gpc``) turns marketing off once,
and keeps it off unless the visitor grants it explicitly afterwards.

A site's consent management platform speaks through the tag's CMP adapter: an IAB TCF
TC string (decoded here, ``privacy.tcf``) or Google Consent Mode's states. The purposes
come from what the signal says under the site's mapping, never from the booleans the
beacon claims beside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privacy import tcf
from tracker.errors import Invalid
from tracker.storage.records import CmpMapping, ConsentMode, ConsentReceipt, ConsentState, Event

POLICY_UNSPECIFIED = "unspecified"
CMP_SOURCES = ("tcf", "gcm")
GCM_STATES = ("granted", "denied")
_GCM_ENTRY = re.compile(r"([a-z_]{1,40})=([a-z]{1,10})")
_GCM_MAX_TYPES = 16


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


@dataclass(frozen=True, slots=True)
class CmpDecision:
    analytics: bool
    marketing: bool
    signal: dict[str, Any]
    """What the receipt keeps as proof of what the CMP said."""


def from_cmp(source: str, signal: str, mapping: CmpMapping) -> CmpDecision:
    """The purposes a CMP's signal grants under the site's mapping; ``Invalid`` when the
    signal is malformed (the message never repeats it)."""
    if source == "tcf":
        tc = tcf.decode(signal)
        return CmpDecision(tc.consents(mapping.tcf_analytics), tc.consents(mapping.tcf_marketing),
                           {"cmp_id": tc.cmp_id, "cmp_version": tc.cmp_version,
                            "tcf_policy_version": tc.policy_version,
                            "vendor_list_version": tc.vendor_list_version,
                            "last_updated": tc.last_updated, "tc_string": signal})  # fmt: skip
    if source == "gcm":
        states = gcm_states(signal)
        return CmpDecision(_granted(states, mapping.gcm_analytics),
                           _granted(states, mapping.gcm_marketing), {"states": states})  # fmt: skip
    raise Invalid(f"consent source must be one of: {', '.join(CMP_SOURCES)}")


def gcm_states(signal: str) -> dict[str, str]:
    """``analytics_storage=granted,ad_storage=denied``, as the tag's adapter sends it."""
    states: dict[str, str] = {}
    for entry in signal.split(",") if signal else ():
        found = _GCM_ENTRY.fullmatch(entry)
        if found is None or found[2] not in GCM_STATES:
            raise Invalid("Consent Mode signal must be type=granted|denied, comma-separated")
        states[found[1]] = found[2]
    if len(states) > _GCM_MAX_TYPES:
        raise Invalid(f"Consent Mode signal names more than {_GCM_MAX_TYPES} types")
    return states


def _granted(states: Mapping[str, str], types: tuple[str, ...]) -> bool:
    return bool(types) and all(states.get(t) == "granted" for t in types)
