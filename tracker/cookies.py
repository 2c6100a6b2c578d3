"""The visitor cookie, set by the collector itself when it answers first-party.

Safari caps cookies written by scripts at 7 days; a cookie set by the server in an HTTP
response (HttpOnly, Secure, SameSite=Lax) from the site's own domain keeps its full
lifetime. So when the collector is reached over HTTPS on the site's own host (a path
such as ``www.example.co.jp/ashiato/``) or on a sibling host under the site's cookie
domain (``t.example.co.jp`` with ``--cookie-domain example.co.jp``), it sets
``_ashiato_vid`` itself — once, never renewed, so it lives at most 13 months — and the
cookie's id is the visitor's id from then on, whatever the tag's memory says. The tag
writes a cookie of the same name from script when it cannot see the collector's (which
is HttpOnly); on the site's own host (the path layout) both reach the collector under
one name, so the collector's value carries a ``.s`` suffix: a bare id is the tag's
cookie, which the collector adopts and replaces with its own, keeping the id. A forget
or a withdrawal of analytics clears it in the same response. On an opt-in site it is set
only once the visitor has granted analytics. Anywhere else (plain HTTP, a third-party
host) the collector neither reads nor writes cookies.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tracker.storage.records import Site

VID_COOKIE = "_ashiato_vid"
OWN_SUFFIX = ".s"  # marks the value the collector set (the tag's is the bare id)
LIFETIME_SECONDS = 34_128_000  # 395 days: 13 months
_ATTRIBUTES = "; Path=/; HttpOnly; Secure; SameSite=Lax"


def first_party_domain(site: Site, host: str | None, origin: str | None) -> str | None:
    """``""`` (a host-only cookie) or the cookie domain when the collector answers as the
    site itself; None when it must not touch cookies for this request."""
    if not host or not origin:
        return None
    host = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
    try:
        origin_host = (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return None
    if not site.allows_origin(origin) or not origin_host:
        return None
    if host == origin_host:
        return ""
    domain = site.settings.cookie_domain
    if domain and _within(host, domain) and _within(origin_host, domain):
        return domain
    return None


def _within(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def set_vid(vid: str, domain: str) -> str:
    lifetime = f"Max-Age={LIFETIME_SECONDS}"
    return f"{VID_COOKIE}={vid}{OWN_SUFFIX}; {lifetime}{_domain(domain)}{_ATTRIBUTES}"


def clear_vid(domain: str) -> str:
    return f"{VID_COOKIE}=; Max-Age=0{_domain(domain)}{_ATTRIBUTES}"


def _domain(domain: str) -> str:
    return f"; Domain={domain}" if domain else ""


def read_vid(cookie_header: str | None) -> tuple[str, bool] | None:
    """The visitor id in a Cookie header, if one is there and well-formed, and whether
    the collector set it (True) or the tag did (False). The collector's wins."""
    if not cookie_header:
        return None
    found = None
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name != VID_COOKIE:
            continue
        own = value.endswith(OWN_SUFFIX)
        vid = value[: -len(OWN_SUFFIX)] if own else value
        if len(vid) == 32 and all(c in "0123456789abcdef" for c in vid):
            if own:
                return vid, True
            found = found or (vid, False)
    return found
