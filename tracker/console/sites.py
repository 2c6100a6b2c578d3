"""Admin's site pages: list, create (the snippet and secret shown once), edit; the
snippet with a copy button and the Content-Security-Policy the site's pages need."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import RedirectResponse, Response

from tracker.cli.sites import snippet
from tracker.console.web import Console, page
from tracker.errors import Invalid, NotFound
from tracker.sites import create_site, edit_site, remove_site
from tracker.storage.records import CONSENT_MODES, IDENTIFY_POLICIES, Site

FORMS = ("marked", "all")


def origins_of(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def tag_url(console: Console) -> str:
    """Where browsers load the tag: ``ASHIATO_PUBLIC_URL``'s, or else this server as
    the console was reached (``make run PORT=…`` on any port)."""
    if console.services.settings.public_url:
        return console.services.settings.tag_url
    return str(console.request.base_url).rstrip("/") + "/t.js"


def site_csp(url: str) -> str:
    """What the site's own Content-Security-Policy must allow for the tag: the tag's
    origin for scripts, beacons and the pixel (plus the inline stub, by nonce or by
    loading ``/s.js`` instead)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        f"script-src 'self' {origin} 'nonce-{{NONCE}}'; connect-src 'self' {origin}; "
        f"img-src 'self' {origin}"
    )


async def _site(console: Console) -> Site:
    """The site named in the path, removed ones included."""
    key = console.request.path_params["site_key"]
    site = next((s for s in await console.services.store.list_sites() if s.key == key), None)
    if site is None:
        raise NotFound("site not found")
    return site


@page("admin")
async def sites_page(console: Console) -> Response:
    services = console.services
    if console.request.method == "POST":
        fields = console.form
        site, secret = await create_site(
            services.store, services.vault, fields.get("name"),
            origins_of(fields.get("origins")), fields.get("consent"),
            now=console.clock.now_ms, identify=fields.get("identify", "any"),
            forms=fields.get("forms", "marked"),
            policy_version=fields.get("policy_version").strip() or "unspecified",
        )  # fmt: skip
        await services.sites.refresh()
        await console.audit("site.create", site.key)
        return _site_view(console, site, secret=secret.hex(), created=True)
    sites = await services.store.list_sites()
    return console.render("sites.html", sites=sites, consent_modes=CONSENT_MODES)


@page("admin")
async def site_page(console: Console) -> Response:
    site = await _site(console)
    if console.request.method == "POST":
        if site.settings.removed_at:
            raise Invalid("this site was removed")
        fields = console.form
        site = await edit_site(
            console.services.store, site, origins=origins_of(fields.get("origins")),
            consent_mode=fields.get("consent"), identify=fields.get("identify"),
            forms=fields.get("forms"),
        )  # fmt: skip
        await console.services.sites.refresh()
        await console.audit("site.edit", site.key)
        return RedirectResponse(f"/admin/sites/{site.key}?saved=1", 303)
    saved = bool(console.request.query_params.get("saved"))
    return _site_view(console, site, secret=None, created=False, saved=saved)


@page("admin")
async def site_remove(console: Console) -> Response:
    """Remove after the user typed the site's name; collection stops at once."""
    site = await _site(console)
    if console.form.get("confirm").strip() != site.name:
        raise Invalid("type the site's name to remove it")
    await remove_site(console.services.store, site, now=console.clock.now_ms)
    await console.services.sites.refresh()
    await console.audit("site.remove", site.key)
    return RedirectResponse("/admin/sites", 303)


def _site_view(
    console: Console, site: Site, *, secret: str | None, created: bool, saved: bool = False
) -> Response:
    url = tag_url(console)
    return console.render(
        "site.html", site=site, snippet=snippet(site, url), csp=site_csp(url),
        secret=secret, created=created, saved=saved, consent_modes=CONSENT_MODES,
        identify_policies=IDENTIFY_POLICIES, forms=FORMS,
    )  # fmt: skip
