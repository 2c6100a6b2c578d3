"""The demo ``make run`` points newcomers at: the whole loop in one browser.

``/demo/`` carries the tag, some links and a marked form; ``/demo/me`` shows what the
server now holds about *this* browser (found by its ``_ashiato_vid`` cookie): its page
views and, once the form was sent, the lead they belong to. Both say why this browser's
events are dropped, when they are (``tracker.demo.checks``), in English or Japanese.
Both exist only with ``ASHIATO_DEMO=true`` — a development convenience, never for
production.

Everything interpolated is escaped (a user agent is the client's to choose, and the
browser name parsed from it lands on this page), and the pages carry no inline handlers:
their one script and one style element carry the response's CSP nonce (see
``tracker.routes.html_page``).
"""

from __future__ import annotations

import asyncio
import html
import time
from urllib.parse import parse_qs

from starlette.requests import Request

from privacy.crypto.primitives import InvalidCiphertext
from tracker.beacon import is_email_address
from tracker.cookies import read_vid
from tracker.demo import checks
from tracker.demo.text import pick_language, say
from tracker.services import Services
from tracker.storage.records import Site

DEMO_SITE = "demo"
LEAD_WAIT_SECONDS = 5.0
"""How long the form's answer waits for the identification the tag sent beside it."""
MAX_FORM_BYTES = 16_384

_HEAD = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="/admin/static/icon.svg">
<script nonce="{nonce}">window.ashiato=window.ashiato||function(){{
(ashiato.q=ashiato.q||[]).push(arguments)}};document.addEventListener("click",function(e){{
if(e.target.id==="demo-click")ashiato("event","demo_click",{{button:"hello"}})}})</script>
<script async src="/t.js" data-site="{key}" data-consent="notice"></script>
<style nonce="{nonce}">
body{{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}}
code,pre{{background:#f3f3f3;padding:0 .2em}} pre code{{padding:0}}
pre{{padding:.5em;white-space:pre-wrap;word-break:break-all}}
input{{display:block;margin:.2rem 0 .6rem}} nav{{float:right}}
.dropped{{border-left:4px solid #c60;background:#fff6ee;padding:.2rem 1rem}}
td{{padding:.1rem .6rem;border-bottom:1px solid #eee;font-size:.9rem}}</style></head><body>
"""

_PAGE = """<h1>{title}</h1>
<p>{intro} <a href="/demo/me{q}">{see_me}</a>{stop}</p>
<ul>
<li><a href="/demo/?page=pricing{a}">pricing</a> · <a href="/demo/?page=product{a}">product</a>
 ({page_views})</li>
<li><a href="https://example.com/">{outbound}</a> (<code>outbound</code>)</li>
<li><a href="/demo/whitepaper.pdf" download>{download}</a> (<code>download</code>)</li>
</ul>
<p><button id="demo-click" type="button">{custom}</button></p>
<form data-ashiato action="/demo/me{q}" method="post">
<h2>{contact}</h2>
<label>{email} <input type="email" name="email" required></label>
<label>{name} <input name="name"></label>
<label>{company} <input name="company"></label>
<label>{password} <input type="password" name="password"></label>
<button>{send}</button>
</form>
<p>{snippet_intro}</p><pre><code>{snippet}</code></pre>
<p>{console}</p>
</body></html>
"""


def language(request: Request) -> str:
    accepted = request.headers.get("accept-language", "")
    return pick_language(request.query_params.get("lang"), accepted)


async def _site(services: Services) -> Site | None:
    sites = await services.sites.snapshot()
    return next((s for s in sites.values() if s.name == DEMO_SITE), None)


def _head(lang: str, site: Site | None, nonce: str, title: str) -> str:
    key = html.escape(site.key) if site else ""
    return _HEAD.format(lang=lang, title=html.escape(title), key=key, nonce=html.escape(nonce))


def _switch(lang: str, path: str) -> str:
    other = "en" if lang == "ja" else "ja"
    label = "English" if other == "en" else "日本語"
    return f'<nav><a href="{path}?lang={other}" hreflang="{other}">{label}</a></nav>'


def _explain(lang: str, found: list[checks.Finding]) -> str:
    """The reasons, each in the visitor's language; empty when nothing is dropped."""
    if not found:
        return ""
    items = "".join(
        "<li>" + say(lang, f.reason, ua=html.escape(f.user_agent), origin=html.escape(f.origin),
                     origins=html.escape(", ".join(f.origins))) + "</li>"
        for f in found
    )  # fmt: skip
    return f'<div class="dropped"><h2>{say(lang, "dropped_here")}</h2><ul>{items}</ul></div>'


def _dropped_counts(lang: str, services: Services) -> str:
    counts = sorted((r, n) for r, n in services.metrics.dropped.items() if n)
    if not counts:
        return ""
    listed = ", ".join(f"<code>{html.escape(str(r))}</code> {n}" for r, n in counts)
    return f"<p>{say(lang, 'dropped_server', counts=listed)}</p>"


async def render(services: Services, request: Request, *, nonce: str) -> str:
    lang = language(request)
    site = await _site(services)
    if site is None:
        return f"<p>{say(lang, 'no_site')}</p>"
    from tracker.cli.sites import snippet  # the same snippet `ashiato site add` prints

    vid = read_vid(request.headers.get("cookie"))
    found = await checks.findings(services, request, site, vid[0] if vid else None)
    q, a = ("", "") if "lang" not in request.query_params else (f"?lang={lang}", f"&lang={lang}")
    words = {k: say(lang, k) for k in ("title", "see_me", "page_views", "outbound", "download",
                                       "custom", "contact", "email", "name", "company",
                                       "password", "send", "console", "stop")}  # fmt: skip
    body = _PAGE.format(
        intro=say(lang, "intro", name=html.escape(site.name)), q=q, a=a,
        snippet_intro=say(lang, "snippet"),
        snippet=html.escape(snippet(site, checks.page_origin(request) + "/t.js")), **words,
    )  # fmt: skip
    return (_head(lang, site, nonce, words["title"]) + _switch(lang, "/demo/")
            + _explain(lang, found) + body)  # fmt: skip


async def me(services: Services, request: Request, *, nonce: str) -> str:
    """What this browser's visitor id has in the store (demo only). The form posts here:
    its answer waits until the identification the tag sent beside it is committed."""
    lang = language(request)
    site = await _site(services)
    found_vid = read_vid(request.headers.get("cookie"))  # the collector's own or the tag's
    out = [_head(lang, site, nonce, say(lang, "held")), _switch(lang, "/demo/me"),
           f"<h1>{say(lang, 'held')}</h1>"]  # fmt: skip
    if found_vid is None:
        out.append(f"<p>{say(lang, 'no_vid')}</p>")
        return "".join(out)
    vid = found_vid[0]  # 32 lowercase hex: read_vid accepts nothing else
    found = await checks.findings(services, request, site, vid) if site else []
    out.append(f"<p>{say(lang, 'vid')} <code>{vid}</code></p>")
    if request.method == "POST" and not found:
        email = await _posted_email(request)
        if email and not await wait_for_lead(services, vid, email):
            out.append(f"<p>{say(lang, 'not_linked', seconds=str(int(LEAD_WAIT_SECONDS)))}</p>")
    out += await _leads(services, lang, vid)
    events = await services.store.visitor_events(vid, limit=200)
    out.append(_explain(lang, found))
    if not events and not found:
        out.append(f"<p>{say(lang, 'no_events')}</p>")
    out.append(_dropped_counts(lang, services))
    out.append(f"<h2>{say(lang, 'events', count=str(len(events)))}</h2><table>")
    for event in events:
        cells = (event.type, event.name, event.url, f"{event.browser} / {event.os}")
        out.append("<tr>" + "".join(f"<td>{html.escape(c or '')}</td>" for c in cells) + "</tr>")
    out.append(f"</table><p><a href='/demo/'>{say(lang, 'back')}</a></p></body></html>")
    return "".join(out)


async def _posted_email(request: Request) -> str | None:
    """The form's email (read only to know which lead to wait for; never stored)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode(), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):  # a malformed body: nothing to wait for
        return None
    email = (fields.get("email") or [""])[0]
    return email if is_email_address(email) else None


async def wait_for_lead(
    services: Services, vid: str, email: str, *, timeout: float = LEAD_WAIT_SECONDS
) -> bool:
    """Until this visitor is linked to the lead of ``email``, or ``timeout`` passes. The
    tag sends the identification as the form is submitted; the two requests race, and
    the answer to the form must not show the page before the link is committed.
    (Polled: a demo page, not worth a notification path through the writer.)"""
    index = services.personal.email_index(email)
    deadline = time.monotonic() + timeout
    while True:
        lead = await services.store.lead_by_index(index)
        if lead is not None:
            links = await services.store.links_of_visitor(vid)
            if any(link.lead_id == lead.id for link in links):
                return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def _leads(services: Services, lang: str, vid: str) -> list[str]:
    out = []
    for link in await services.store.links_of_visitor(vid):
        lead = await services.store.lead(link.lead_id)
        if lead is None:
            continue
        try:
            person = await services.personal.read(lead)
        except InvalidCiphertext:
            continue
        shown = ", ".join(html.escape(v) for v in (person.email, person.name, person.company) if v)
        said = say(lang, "linked", lead=html.escape(lead.id),
                   evidence=html.escape(link.evidence), person=shown)  # fmt: skip
        console = say(lang, "in_console", href=f"/admin/leads/{html.escape(lead.id)}")
        out.append(f"<p>{said} {console}</p>")
    return out
