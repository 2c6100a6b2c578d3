"""The demo ``make run`` points newcomers at: the whole loop in one browser.

``/demo/`` carries the tag, some links and a marked form; ``/demo/me`` shows what the
server now holds about *this* browser (found by its ``_ashiato_vid`` cookie): its page
views and, once the form was sent, the lead they belong to. Both exist only with
``ASHIATO_DEMO=true`` — a development convenience, never for production.

Everything interpolated is escaped (a user agent is the client's to choose, and the
browser name parsed from it lands on this page), and the pages carry no inline handlers:
their one script and one style element carry the response's CSP nonce (see
``tracker.routes.html_page``).
"""

from __future__ import annotations

import html

from starlette.requests import Request

from privacy.crypto.primitives import InvalidCiphertext
from tracker.cookies import read_vid
from tracker.services import Services
from tracker.storage.records import Site

DEMO_SITE = "demo"

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script nonce="{nonce}">window.ashiato=window.ashiato||function(){{
(ashiato.q=ashiato.q||[]).push(arguments)}};document.addEventListener("click",function(e){{
if(e.target.id==="demo-click")ashiato("event","demo_click",{{button:"hello"}})}})</script>
<script async src="/t.js" data-site="{key}" data-consent="notice"></script>
<style nonce="{nonce}">
body{{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .2em}} input{{display:block;margin:.2rem 0 .6rem}}
td{{padding:.1rem .6rem;border-bottom:1px solid #eee;font-size:.9rem}}</style></head><body>
"""

_PAGE = """<h1>ashiato demo</h1>
<p>This page carries the tag for site <code>{name}</code> (consent mode <em>notice</em>).
Browse a little, then send the form: the browsing you did anonymously becomes the
history of a lead. <a href="/demo/me">See what the server holds about this browser</a>.</p>
<ul>
<li><a href="/demo/?page=pricing">pricing</a> · <a href="/demo/?page=product">product</a>
 (page views)</li>
<li><a href="https://example.com/">an outbound link</a> (an <code>outbound</code> event)</li>
<li><a href="/demo/whitepaper.pdf" download>a download</a> (a <code>download</code> event)</li>
</ul>
<p><button id="demo-click" type="button">Send a custom event</button></p>
<form data-ashiato action="/demo/me" method="post">
<h2>Contact us</h2>
<label>Email <input type="email" name="email" required></label>
<label>Name <input name="name"></label>
<label>Company <input name="company"></label>
<label>Password (never read by the tag) <input type="password" name="password"></label>
<button>Send</button>
</form>
</body></html>
"""


async def _site(services: Services) -> Site | None:
    sites = await services.sites.snapshot()
    return next((s for s in sites.values() if s.name == DEMO_SITE), None)


def _head(title: str, site: Site | None, nonce: str) -> str:
    key = html.escape(site.key) if site else ""
    return _HEAD.format(title=html.escape(title), key=key, nonce=html.escape(nonce))


async def render(services: Services, request: Request, *, nonce: str) -> str:
    site = await _site(services)
    if site is None:
        return "<p>No site named <code>demo</code> yet: run <code>make run</code>.</p>"
    return _head("ashiato demo", site, nonce) + _PAGE.format(name=html.escape(site.name))


async def me(services: Services, request: Request, *, nonce: str) -> str:
    """What this browser's visitor id has in the store (demo only)."""
    site = await _site(services)
    found = read_vid(request.headers.get("cookie"))  # the collector's own or the tag's
    out = [_head("what ashiato holds", site, nonce), "<h1>What the server holds</h1>"]
    if found is None:
        out.append("<p>No visitor id yet: open <a href='/demo/'>the demo page</a> first.</p>")
        return "".join(out)
    vid = found[0]  # 32 lowercase hex: read_vid accepts nothing else
    out.append(f"<p>Visitor id (cookie <code>_ashiato_vid</code>): <code>{vid}</code></p>")
    links = await services.store.links_of_visitor(vid)
    for link in links:
        lead = await services.store.lead(link.lead_id)
        if lead is None:
            continue
        try:
            person = await services.personal.read(lead)
        except InvalidCiphertext:
            continue
        out.append(
            f"<p>Linked to lead <code>{html.escape(lead.id)}</code> (evidence "
            f"<em>{html.escape(link.evidence)}</em>): {html.escape(person.email)}, "
            f"{html.escape(person.name or '')}, {html.escape(person.company or '')} — "
            "stored only as ciphertext under the lead's own key.</p>"
        )
    events = await services.store.visitor_events(vid, limit=200)
    out.append(f"<h2>{len(events)} events</h2><table>")
    for event in events:
        cells = (event.type, event.name, event.url, f"{event.browser} / {event.os}")
        out.append("<tr>" + "".join(f"<td>{html.escape(c or '')}</td>" for c in cells) + "</tr>")
    out.append("</table><p><a href='/demo/'>back to the demo page</a></p></body></html>")
    return "".join(out)
