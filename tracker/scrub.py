"""URL scrubbing: remove personal data from URLs before they are stored.

Query parameters whose *name* says they carry personal data or secrets (email, tel,
name, token, password, …) and any whose *value* holds an email address or a phone
number (``privacy.redact``) are removed — campaign parameters (``utm_*``) and ad click
ids too, which are otherwise read out so they can be stored as columns. Path segments
holding an email address or a phone number are replaced by a marker; credentials in
the authority part and fragments that are not client-side routes are removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from privacy.redact import EMAIL_MARK, has_personal_value, looks_like_email, redact
from tracker.memo import Memo

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_IDS = frozenset({
    "gclid", "gbraid", "wbraid", "dclid", "gclsrc", "fbclid", "msclkid", "ttclid",
    "twclid", "li_fat_id", "yclid", "ymclid", "mc_cid", "igshid", "epik", "rdt_cid",
    "sccid", "irclickid", "_kx",
})  # fmt: skip

# Compared after lower-casing and removing "-", "_" and ".".
_PII_NAMES = frozenset({
    "name", "firstname", "lastname", "fname", "lname", "fullname", "surname", "givenname",
    "familyname", "username", "user", "login", "tel", "phone", "mobile", "fax", "address",
    "street", "zip", "zipcode", "postcode", "postalcode", "birthday", "birthdate", "dob",
    "ssn", "creditcard", "cc", "ccnumber", "cardnumber", "cvv", "cvc", "iban", "code",
    "auth", "authorization", "session", "sessionid", "sessid", "phpsessid", "jsessionid",
    "sig", "signature", "key", "apikey", "otp", "pin", "company", "ip",
})  # fmt: skip
_PII_PARTS = ("mail", "pass", "pwd", "token", "secret", "phone", "credential", "jwt")


@dataclass(slots=True)
class ScrubbedURL:
    url: str | None
    utm: dict[str, str] = field(default_factory=dict)
    click_ids: dict[str, str] = field(default_factory=dict)


def is_personal_param(name: str, value: str) -> bool:
    key = name.lower().replace("-", "").replace("_", "").replace(".", "")
    if key in _PII_NAMES or any(part in key for part in _PII_PARTS):
        return True
    return has_personal_value(value)


def _redact_path(path: str) -> str:
    """Whole segments that hold an email address become a marker (the address may be
    percent-encoded in pieces); phone numbers are replaced where they stand."""
    if "@" in path or "%40" in path.lower():
        path = "/".join(EMAIL_MARK if looks_like_email(s) else s for s in path.split("/"))
    return redact(path)


_CLEAN: Memo[tuple[str, bool], ScrubbedURL] = Memo(2 << 20, lambda key: 2 * len(key[0]))
"""URLs the scrub left unchanged: 2 MiB (the URL is held twice, as key and as result)."""


def scrub_url(url: str | None, *, web_only: bool = True) -> ScrubbedURL:
    """Return ``url`` without personal data, plus its campaign parameters.

    ``web_only``: anything but an absolute http(s) URL becomes ``None`` (page URLs);
    referrers may be ``android-app://…`` and the like, so they pass with ``False``.

    A site's page URLs repeat, so results are remembered — only for URLs the scrub left
    unchanged: a URL that carried personal data is never kept, not even in memory.
    Callers must not change the returned dicts.
    """
    if not url:
        return ScrubbedURL(None)
    key = (url, web_only)
    found = _CLEAN.get(key)
    if found is not None:
        return found
    result = _scrub_url(url, web_only)
    if result.url == url:
        _CLEAN.put(key, result)
    return result


def _scrub_url(url: str, web_only: bool) -> ScrubbedURL:
    if not url:
        return ScrubbedURL(None)
    try:
        parts = urlsplit(url)
    except ValueError:
        return ScrubbedURL(None)
    if web_only and (parts.scheme not in ("http", "https") or not parts.hostname):
        return ScrubbedURL(None)
    netloc = parts.netloc.rpartition("@")[2]  # drop user:password@
    path = _redact_path(parts.path)
    query, utm, click_ids = _scrub_query(parts.query)
    fragment = _scrub_fragment(parts.fragment)
    if (netloc, path, query, fragment) == (parts.netloc, parts.path, parts.query, parts.fragment):
        return ScrubbedURL(url, utm, click_ids)
    scrubbed = urlunsplit((parts.scheme, netloc, path, query, fragment))
    return ScrubbedURL(scrubbed, utm, click_ids)


def _scrub_query(query: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Drop personal parameters; kept pairs keep their original encoding."""
    if not query:
        return query, {}, {}
    kept: list[str] = []
    utm: dict[str, str] = {}
    click_ids: dict[str, str] = {}
    for pair in query.split("&"):
        raw_name, _, raw_value = pair.partition("=")
        name, value = _decode(raw_name).lower(), _decode(raw_value)
        if name in UTM_FIELDS or name in CLICK_IDS:
            if has_personal_value(value):
                continue  # dropped from the address and from the columns alike
            (utm if name in UTM_FIELDS else click_ids)[name] = value[:256]
        elif is_personal_param(name, value):
            continue
        if pair:
            kept.append(pair)
    return "&".join(kept), utm, click_ids


def _decode(text: str) -> str:
    if "%" not in text and "+" not in text:
        return text
    return unquote_plus(text)


def _scrub_fragment(fragment: str) -> str:
    """Keep client-side routes (``#/path``, ``#!/path``) scrubbed; drop anything else."""
    if not fragment.startswith(("/", "!/")):
        return ""
    path, _, query = fragment.partition("?")
    query = _scrub_query(query)[0]
    return _redact_path(path) + ("?" + query if query else "")
