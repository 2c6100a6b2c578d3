"""IAB TCF v2.2 TC strings: a small decoder for what a consent beacon claims.

A TC string is base64url segments joined by dots: the core segment first, then
optional ones (disclosed vendors, the publisher's own purposes) that start with their
segment type. Only what ashiato's purposes depend on is read: the core segment's header
and purpose consents (the vendor sections after them are skipped), and the publisher
segment's purpose consents. Anything malformed raises ``Invalid`` with a message that
never repeats the string.

Spec: IAB Europe, "Transparency & Consent String with Global Vendor & CMP List Formats",
v2.2 (bit layout of the core and publisher TC segments).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tracker.errors import Invalid

MAX_LENGTH = 8192
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_CORE_BITS = 213  # through PublisherCC; the vendor sections follow
_PUBLISHER_SEGMENT = 3
_DECISECOND_MS = 100


@dataclass(frozen=True, slots=True)
class TCString:
    cmp_id: int
    cmp_version: int
    policy_version: int
    """``TcfPolicyVersion``: 4 for TCF v2.2 (v2.0 and v2.1 strings say 2)."""
    vendor_list_version: int
    created: int
    last_updated: int
    """Milliseconds since the epoch (the string keeps deciseconds)."""
    purposes: frozenset[int]
    """Purposes consented to (``PurposesConsent``)."""
    publisher: frozenset[int] | None
    """The publisher's own purposes consented to; None without a publisher segment."""

    def consents(self, ids: Iterable[str]) -> bool:
        """Whether every id is consented: ``"8"`` a purpose, ``"p8"`` the publisher's
        purpose 8. No ids, no consent."""
        wanted = list(ids)
        return bool(wanted) and all(self._has(i) for i in wanted)

    def _has(self, id_: str) -> bool:
        held = (self.publisher or frozenset()) if id_.startswith("p") else self.purposes
        number = id_.removeprefix("p")
        return number.isdigit() and int(number) in held


class _Bits:
    def __init__(self, segment: str) -> None:
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            raise Invalid("TC string segment is not base64url") from None
        self.value = int.from_bytes(raw, "big")
        self.length = len(raw) * 8
        self.at = 0

    def take(self, n: int) -> int:
        if self.at + n > self.length:
            raise Invalid("TC string segment is too short")
        self.at += n
        return (self.value >> (self.length - self.at)) & ((1 << n) - 1)

    def flags(self, n: int) -> frozenset[int]:
        field = self.take(n)
        return frozenset(i + 1 for i in range(n) if field >> (n - 1 - i) & 1)


def decode(text: str) -> TCString:
    if not text or len(text) > MAX_LENGTH:
        raise Invalid(f"TC string must be 1 to {MAX_LENGTH} characters")
    segments = text.split(".")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise Invalid("TC string must be base64url segments joined by dots")
    core = _Bits(segments[0])
    if core.length < _CORE_BITS or core.take(6) != 2:
        raise Invalid("TC string is not a TCF v2 core segment")
    created, updated = core.take(36), core.take(36)
    cmp_id, cmp_version = core.take(12), core.take(12)
    core.take(6 + 12)  # ConsentScreen, ConsentLanguage
    vendor_list, policy = core.take(12), core.take(6)
    core.take(1 + 1 + 12)  # IsServiceSpecific, UseNonStandardTexts, SpecialFeatureOptIns
    purposes = core.flags(24)
    publisher = None
    for segment in segments[1:]:
        bits = _Bits(segment)
        if bits.take(3) == _PUBLISHER_SEGMENT:
            publisher = bits.flags(24)
    return TCString(cmp_id, cmp_version, policy, vendor_list, created * _DECISECOND_MS,
                    updated * _DECISECOND_MS, purposes, publisher)  # fmt: skip
