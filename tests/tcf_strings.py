"""TC strings for tests: an encoder of the IAB TCF v2.2 core and publisher segments (the
vendor sections empty), written from the spec apart from ``privacy.tcf``'s decoder."""

from __future__ import annotations

import base64
from collections.abc import Iterable


def _letters(code: str) -> str:
    return "".join(format(ord(c) - ord("A"), "06b") for c in code)


def _flags(numbers: Iterable[int], width: int) -> str:
    held = set(numbers)
    return "".join("1" if i in held else "0" for i in range(1, width + 1))


def _segment(bits: str) -> str:
    bits += "0" * (-len(bits) % 8)
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tc_string(
    purposes: Iterable[int],
    *,
    publisher: Iterable[int] | None = None,
    cmp_id: int = 300,
    cmp_version: int = 2,
    policy_version: int = 4,
    vendor_list_version: int = 150,
    updated_ds: int = 17_330_000_000,
) -> str:
    core = (
        format(2, "06b")  # Version
        + format(updated_ds, "036b") + format(updated_ds, "036b")  # Created, LastUpdated
        + format(cmp_id, "012b") + format(cmp_version, "012b")
        + format(1, "06b") + _letters("JA")  # ConsentScreen, ConsentLanguage
        + format(vendor_list_version, "012b") + format(policy_version, "06b")
        + "1" + "0" + "0" * 12  # IsServiceSpecific, UseNonStandardTexts, SpecialFeatureOptIns
        + _flags(purposes, 24) + "0" * 24  # PurposesConsent, PurposesLITransparency
        + "0" + _letters("JP")  # PurposeOneTreatment, PublisherCC
        + format(0, "016b") + "0"  # vendor consents: MaxVendorId 0, bit field
        + format(0, "016b") + "0"  # vendor legitimate interests: the same
        + format(0, "012b")  # NumPubRestrictions
    )  # fmt: skip
    segments = [_segment(core)]
    if publisher is not None:
        segments.append(_segment("011" + _flags(publisher, 24) + "0" * 24 + format(0, "06b")))
    return ".".join(segments)
