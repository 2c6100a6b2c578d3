"""Email addresses and phone numbers found *by value* in free text, and their redaction.

What the collector stores besides the sealed person data — page addresses, campaign
values, titles, event names and props — comes from the browser, and people (or sloppy
templates) put addresses and numbers anywhere: ``utm_content=taro@example.jp``, a
"Thanks, 090-1234-5678" title. Parameter names cannot catch that; these rules look at
the value itself.

Cheap on the collector's hot path: a text with no ``@`` skips the email pattern, and the
phone pattern needs a run of at least 8 digits and separators before any Python runs.
Both patterns are linear on hostile input: a match can only start where a run of its
characters starts (a look-behind), so no position is scanned twice over.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

EMAIL_MARK = "(email)"
PHONE_MARK = "(phone)"

_EMAIL = re.compile(
    r"(?<![\w.+%-])[\w.+%-]+(?:@|＠|%40)[\w-]+(?:[.．][\w-]+)+"
)  # fmt: skip
# A candidate phone number: digits with the separators people write (ASCII and the
# full-width forms Japanese input produces), not glued to letters or other digits.
_SEPARATORS = " \u3000().\\-\u2010-\u2015\u2212\uff0d\uff08\uff09"
_PHONE_RUN = re.compile(
    rf"(?<![A-Za-z_\d])[+\uff0b(\uff08]?\d[\d{_SEPARATORS}]{{6,}}\d(?![A-Za-z_\d])"
)
# The same run without the look-behinds: a quick no for most text (no 8-long run).
_PHONE_HINT = re.compile(rf"\d[\d{_SEPARATORS}]{{6,}}\d")
_DIGIT_GROUPS = re.compile(r"\d+")


def looks_like_email(text: str) -> bool:
    """Something@something.tld anywhere in ``text`` (plain or percent-encoded ``@``)."""
    # Linear-time on purpose: a regex here is quadratic on long hostile input.
    at = text.rfind("@")
    if at < 0:
        at = text.rfind("＠")
    if at < 0:
        at = text.rfind("%40")
        if at < 0:
            return False
    return at > 0 and ("." in text[at:] or "．" in text[at:])


def is_phone_number(run: str) -> bool:
    """Whether a candidate run reads as a phone number rather than a date, a decimal, a
    price or an id: an international ``+`` form; a domestic number starting with 0
    (``090-1234-5678``, ``0312345678``); or 9+ digits in 3+ short groups
    (``(415) 555-2671``). Bare digit runs not starting with 0 (timestamps, ids) are not."""
    groups = _DIGIT_GROUPS.findall(run)
    digits = sum(len(g) for g in groups)
    if not 8 <= digits <= 15:
        return False
    if run[0] in "+\uff0b":
        return True
    first = groups[0]
    if first[0] in "0\uff10" and len(first) >= 2 and digits in (10, 11):
        return True
    return digits >= 9 and len(groups) >= 3 and len(first) <= 3 and len(groups) * 2 <= digits


def has_phone_number(text: str) -> bool:
    if _PHONE_HINT.search(text) is None:
        return False
    return any(is_phone_number(m.group(0)) for m in _PHONE_RUN.finditer(text))


def has_personal_value(text: str) -> bool:
    """An email address or a phone number anywhere in ``text``."""
    return looks_like_email(text) or has_phone_number(text)


def redact(text: str) -> str:
    """``text`` with each email address and phone number replaced by a marker."""
    if "@" in text or "＠" in text or "%40" in text:
        text = _EMAIL.sub(EMAIL_MARK, text)
    if _PHONE_HINT.search(text) is None:  # the common case
        return text
    found = [m.span() for m in _PHONE_RUN.finditer(text) if is_phone_number(m.group(0))]
    for start, end in reversed(found):
        text = text[:start] + PHONE_MARK + text[end:]
    return text


def redact_props(props: Mapping[str, Any]) -> dict[str, Any]:
    """Event props with their keys and string values redacted; other values as they are."""
    return {
        redact(key): redact(value) if isinstance(value, str) else value
        for key, value in props.items()
    }
