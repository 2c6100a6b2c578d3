"""``GET /disclosure/{site_key}`` (HTML, ``?lang=ja|en``) and ``/disclosure/{site_key}.json``:
the site's 外部送信 notice (``privacy.disclosure``), public, for the site to link to or
copy. The HTML goes through the app's strict CSP (``tracker.routes.html_page``): one
style element with the response's nonce, no script; everything interpolated is escaped
by Jinja2's autoescape."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from privacy.disclosure import Disclosures
from tracker.services import Services

if TYPE_CHECKING:
    from jinja2 import Environment

HEADERS = {"Cache-Control": "public, max-age=300"}


@cache
def templates() -> Environment:
    """Jinja2, loaded at the first notice asked for: a collector need not carry it."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("tracker", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )


TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "title": "外部送信に関する公表事項", "version": "プライバシーポリシーの版",
        "revision": "改訂", "updated": "最終更新", "other": "English",
        "intro": "このサイトは、閲覧者の端末から次の送信先へ、次の情報を送信しています"
                 "（電気通信事業法第27条の12）。",
        "recipient": "送信先の名称", "items": "送信される情報の内容", "purposes": "利用目的",
        "opt_out": "送信の停止（オプトアウト）", "first_party": "このサイトの運営者が自ら運用",
        "opt_out_ashiato": "サイトの同意設定で拒否できます。ブラウザの Global Privacy Control "
                           "を有効にすると、マーケティング目的の利用は行いません。",
        "opt_out_none": "送信先の案内をご覧ください。",
    },
    "en": {
        "title": "What this site sends to whom (external transmission notice)",
        "version": "Privacy policy version", "revision": "revision", "updated": "updated",
        "other": "日本語",
        "intro": "This site sends the following information from visitors' devices to "
                 "the following recipients (Japan's Telecommunications Business Act, "
                 "art. 27-12).",
        "recipient": "Recipient", "items": "Information sent", "purposes": "Purposes",
        "opt_out": "Opting out", "first_party": "run by this site's operator itself",
        "opt_out_ashiato": "Refuse in the site's consent settings. With the browser's Global "
                           "Privacy Control on, nothing is used for marketing.",
        "opt_out_none": "See the recipient's own notice.",
    },
}  # fmt: skip


async def render(services: Services, request: Request, *, nonce: str) -> Response | str:
    """The notice as a JSON response, or the HTML page's text (to be sent with the CSP)."""
    name = request.path_params["name"]
    key, wants_json = name.removesuffix(".json"), name.endswith(".json")
    sites = await services.sites.snapshot(wanted=[key])
    site = sites.get(key)
    if site is None:
        return JSONResponse({"error": "no such site"}, 404)
    notice = (await Disclosures(services.store, services.audit).notice(site)).document()
    if wants_json:
        return JSONResponse(notice, headers=HEADERS)
    lang = request.query_params.get("lang", "ja")
    if lang not in TEXTS:
        return JSONResponse({"error": "lang must be ja or en"}, 400)
    return page(notice, lang, nonce=nonce, json_url=f"{key}.json")


def page(notice: dict[str, Any], lang: str, *, nonce: str, json_url: str) -> str:
    other = "en" if lang == "ja" else "ja"
    return (
        templates()
        .get_template("disclosure.html")
        .render(
            notice=notice, lang=lang, other=other, t=TEXTS[lang], nonce=nonce, json_url=json_url
        )
    )
