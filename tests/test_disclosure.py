"""The 外部送信 notice: generated from the beacon schema, recipients registered by the CLI,
every change audited and counted in the revision, served as JSON and as ja/en HTML under
the app's CSP."""

from __future__ import annotations

import httpx
import pytest

from privacy import disclosure
from tests.conftest import Deployment
from tests.servers import cli_json, run_cli, with_store
from tracker import beacon
from tracker.storage.rows import EVENT_COLUMN_NAMES


def test_every_beacon_field_names_an_item_and_no_label_says_etc() -> None:
    assert set(disclosure.FIELD_ITEMS) == set(beacon.FIELDS)
    assert set(disclosure.FIELD_ITEMS.values()) | set(disclosure.REQUEST_ITEMS) <= set(
        disclosure.ITEMS
    )
    assert set(disclosure.STORED_ITEMS) == set(EVENT_COLUMN_NAMES)
    labels = [ja for ja, _ in (*disclosure.ITEMS.values(), *disclosure.PURPOSES.values())]
    assert not [label for label in labels if "等" in label or "など" in label]


def test_the_notice_is_generated_registered_versioned_and_audited(
    deployment: Deployment,
) -> None:
    dep, site = deployment, deployment.site_key
    notice_url = f"{dep.url}/disclosure/{site}"
    first = httpx.get(f"{notice_url}.json").json()
    assert [r["service_name"] for r in first["recipients"]] == ["ashiato"]
    assert set(first["recipients"][0]["fields"]) == set(beacon.FIELDS)

    operator = ("--legal-name", "株式会社サンプル", "--opt-out", "https://www.example.co.jp/p#out")
    cli_json(dep.env, "disclosure", "operator", "--site", site, *operator)
    added = cli_json(dep.env, "disclosure", "add", "--site", site, "--legal-name",
                     "Google LLC", "--service", "Google Analytics", "--item", "cookie_id",
                     "--item", "page_url", "--item", "ip_address", "--purpose", "analytics",
                     "--opt-out", "https://tools.google.com/dlpage/gaoptout")  # fmt: skip
    notice = httpx.get(f"{notice_url}.json").json()
    assert [r["legal_name"] for r in notice["recipients"]] == ["株式会社サンプル", "Google LLC"]
    assert [i["key"] for i in notice["recipients"][1]["items"]] == [
        "cookie_id", "page_url", "ip_address"]  # fmt: skip
    assert notice["revision"] == first["revision"] + 2

    page = httpx.get(notice_url)
    assert page.status_code == 200
    assert "script-src 'self' 'nonce-" in page.headers["content-security-policy"]
    expected = (
        "送信される情報の内容",
        "送信先の名称",
        "利用目的",
        "Google Analytics",
        "株式会社サンプル",
        "IPアドレス",
        "dlpage/gaoptout",
    )
    for text in expected:
        assert text in page.text
    english = httpx.get(notice_url, params={"lang": "en"}).text
    assert "Information sent" in english
    assert "the IP address" in english

    run_cli(dep.env, "disclosure", "remove", "--site", site, added["id"])
    after = httpx.get(f"{notice_url}.json").json()
    assert [r["service_name"] for r in after["recipients"]] == ["ashiato"]
    assert after["revision"] == notice["revision"] + 1
    rows = with_store(dep.database_url, lambda s: s.audit_page(after=0, limit=1000))
    actions = [r.action for r in rows if r.subject == f"site:{site}"]
    assert actions[-3:] == ["disclosure.operator", "disclosure.add", "disclosure.remove"]
    assert "Google Analytics" not in run_cli(dep.env, "disclosure", "--site", site).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--item", "everything", "--purpose", "analytics"), "invalid choice"),
        (("--item", "page_url", "--purpose", "analytics", "--opt-out", "javascript:x"),
         "opt-out URL must be an http(s) address"),
    ],
)  # fmt: skip
def test_bad_recipients_are_refused_with_a_message(
    deployment: Deployment, args: tuple[str, ...], message: str
) -> None:
    result = run_cli(deployment.env, "disclosure", "add", "--site", deployment.site_key,
                     "--legal-name", "X", "--service", "Y", *args, check=False)  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_sites_and_languages_are_4xx(deployment: Deployment) -> None:
    assert httpx.get(f"{deployment.url}/disclosure/nosuchsite.json").status_code == 404
    bad = httpx.get(f"{deployment.url}/disclosure/{deployment.site_key}", params={"lang": "fr"})
    assert bad.status_code == 400
    result = run_cli(deployment.env, "disclosure", "--site", "nosuchsite", check=False)
    assert (result.returncode, "no site with key" in result.stderr) == (2, True)
