"""The marketing pages over HTTP: the lead list's searches on both databases (the
browsing reads are written once for both), roles and form tokens on every marketing
page and action, every view of a person audited, merges from the console undone."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SITE_ORIGIN, Deployment, make_deployment
from tests.console import PASSWORD, add_users, console_deployment, post, signed_in, user_of
from tests.servers import cli_json, with_store
from tests.waiting import wait_until

MARKETING_PAGES = ("/admin/dashboard", "/admin/leads", "/admin/leads/hot",
                   "/admin/leads/hot.csv", "/admin/duplicates")  # fmt: skip
LEAD_LINK = re.compile(r'href="/admin/leads/(ld_[0-9a-f]+)"')


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from console_deployment(tmp_path_factory.mktemp("console-marketing"))


def new_lead(dep: Deployment, email: str, company: str = "株式会社テスト商事") -> str:
    """A visitor who read the pricing page and sent a form; the visitor id."""
    vid = secrets.token_hex(16)
    assert dep.post(dep.beacon(vid=vid, url=f"{SITE_ORIGIN}/pricing?utm_campaign=fall")
                    ).status_code == 204  # fmt: skip
    identify = dep.beacon(
        vid=vid,
        type="identify",
        form="contact",
        traits={"email": email, "name": "山田 太郎", "company": company},
    )
    assert dep.post(identify).status_code == 204
    return vid


def lead_ids(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return list(dict.fromkeys(LEAD_LINK.findall(page.text)))


def test_the_lead_list_searches_by_email_company_and_site(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, backend=backend, ASHIATO_RATE_LIMIT_IP="0")
    add_users(dep.env, ("marketing@example.jp", "marketing"))
    dep.server.start()
    try:
        first, second = f"a.{secrets.token_hex(3)}@example.jp", f"b.{secrets.token_hex(3)}@x.jp"
        new_lead(dep, first)
        new_lead(dep, second, company="別会社株式会社")
        client = signed_in(dep.url, "marketing@example.jp")
        wait_until(lambda: len(lead_ids(client.get("/admin/leads"))) == 2, timeout=20,
                   what="both leads listed")  # fmt: skip
        listing = client.get("/admin/leads").text
        assert listing.index(second) < listing.index(first)  # the latest changed first
        assert "JST" in listing  # last seen, in the user's zone
        newest = lead_ids(client.get("/admin/leads"))[0]
        row = with_store(dep.database_url, lambda s: s.lead(newest))
        assert row is not None
        cursor = f"{row.updated_at}_{newest}"
        older = lead_ids(client.get("/admin/leads", params={"before": cursor}))
        assert older == lead_ids(client.get("/admin/leads"))[1:]  # the next page
        assert len(lead_ids(client.get("/admin/leads", params={"before": "x_y"}))) == 2
        by_email = lead_ids(client.get("/admin/leads", params={"q": first.upper()}))
        by_company = lead_ids(client.get("/admin/leads", params={"q": "テスト商事"}))
        assert len(by_email) == 1
        assert by_company == by_email  # 株式会社 and spacing do not matter
        assert lead_ids(client.get("/admin/leads", params={"site": dep.site_key})) != []
        assert lead_ids(client.get("/admin/leads", params={"q": "nobody@example.jp"})) == []
        assert client.get("/admin/leads", params={"q": "not@an address"}).status_code == 400
        assert lead_ids(client.get("/admin/leads", params={"grade": "hot"})) == []  # no rules
        board = client.get("/admin/dashboard", params={"range": "30d", "campaign": "fall"})
        assert 'id="total-sessions">2<' in board.text
        assert 'id="total-new-leads">2<' in board.text
        now = client.get("/admin/dashboard", params={"range": "today"}).text
        assert now.count('href="/admin/visitors/') == 2  # on the site in the last 30 minutes
        assert len(LEAD_LINK.findall(now)) == 2  # both known leads
    finally:
        dep.server.stop()
    assert "Traceback" not in dep.server.logs()


def test_marketing_pages_refuse_legal_and_posts_without_a_token(dep: Deployment) -> None:
    new_lead(dep, f"c.{secrets.token_hex(3)}@example.jp")
    legal = signed_in(dep.url, "legal@example.jp")
    for path in MARKETING_PAGES:
        assert legal.get(path).status_code == 403, path
    assert post(legal, "/admin/duplicates/not-same", {"lead": "ld_1", "other": "ld_2"}
                ).status_code == 403  # fmt: skip
    marketing = signed_in(dep.url, "marketing@example.jp")
    for path in MARKETING_PAGES:
        assert marketing.get(path).status_code == 200, path
    assert marketing.get("/admin/requests").status_code == 403
    lead = lead_ids(marketing.get("/admin/leads"))[0]
    tokenless = marketing.post(f"/admin/leads/{lead}/merge", data={"other": lead})
    assert tokenless.status_code == 403
    assert marketing.get("/admin/leads/ld_nope").status_code == 404
    assert marketing.get("/admin/visitors/not-a-visitor").status_code == 404
    assert marketing.get("/admin/dashboard", params={"range": "custom", "from": "x"}
                         ).status_code == 400  # fmt: skip


def test_every_view_of_a_person_is_audited_and_a_merge_is_undone(dep: Deployment) -> None:
    email, twin = f"d.{secrets.token_hex(3)}@example.jp", f"e.{secrets.token_hex(3)}@example.jp"
    vid = new_lead(dep, email)
    new_lead(dep, twin)
    marketing = signed_in(dep.url, "marketing@example.jp")
    lead = lead_ids(marketing.get("/admin/leads", params={"q": email}))[0]
    other = lead_ids(marketing.get("/admin/leads", params={"q": twin}))[0]
    page = marketing.get(f"/admin/leads/{lead}")
    assert email in page.text
    assert marketing.get(f"/admin/leads/{lead}/timeline").status_code == 200
    assert marketing.get(f"/admin/visitors/{vid}").status_code == 200

    merged = post(marketing, f"/admin/leads/{lead}/merge", {"other": twin, "reason": "名寄せ"})
    assert merged.status_code == 303
    assert f"/admin/leads/{lead}/unmerge" in marketing.get(f"/admin/leads/{lead}").text
    assert lead_ids(marketing.get("/admin/leads", params={"q": twin})) == [lead]
    undone = post(marketing, f"/admin/leads/{lead}/unmerge", {"other": other})
    assert undone.status_code == 303
    history = marketing.get(f"/admin/leads/{lead}/timeline").text
    assert "kind-merge" in history  # the merge and its undoing stay on the timeline
    assert "kind-unmerge" in history
    assert lead_ids(marketing.get("/admin/leads", params={"q": twin})) == [other]
    pair = f'name="lead" value="{lead}"><input type="hidden" name="other" value="{other}"'
    assert pair in marketing.get("/admin/duplicates").text  # the same name and company
    dismissed = post(marketing, "/admin/duplicates/not-same", {"lead": lead, "other": other})
    assert dismissed.status_code == 303
    assert pair not in marketing.get("/admin/duplicates").text

    actor = f"user:{user_of(dep, marketing)}"
    rows = with_store(dep.database_url, lambda s: s.recent_audit(actor=actor, limit=100))
    seen = {(r.action, r.subject) for r in rows}
    assert {("console.lead.read", lead), ("console.lead.timeline", lead),
            ("console.visitor.read", vid)} <= seen  # fmt: skip
    assert {"console.leads.list", "lead.merge", "lead.unmerge", "duplicates.dismiss"} <= {
        r.action for r in rows
    }
    assert all(email not in str(r.detail) for r in rows)  # ids only, never the address


def test_a_site_limited_marketer_sees_nothing_of_other_sites(dep: Deployment) -> None:
    """An agency's marketer limited to one client's site: the other site's leads,
    visitors, pairs, hot list and dashboard are not there (404 as an unknown id)."""
    other = cli_json(
        dep.env,
        "site",
        "add",
        f"other-{secrets.token_hex(2)}",
        "--origin",
        "https://other.example.jp",
        "--consent",
        "notice",
    )
    mine, theirs = f"f.{secrets.token_hex(3)}@example.jp", f"g.{secrets.token_hex(3)}@example.jp"
    new_lead(dep, mine)
    vid, origin = secrets.token_hex(16), "https://other.example.jp"
    everyone = signed_in(dep.url, "marketing@example.jp")

    def seen_there() -> bool:  # the server learns of a new site within its refresh
        view = dep.beacon(site=other["site_key"], vid=vid, url=f"{origin}/")
        assert dep.post(view, Origin=origin).status_code == 204
        return everyone.get(f"/admin/visitors/{vid}").status_code == 200

    wait_until(seen_there, timeout=30, what="the new site's page view stored")
    identify = dep.beacon(site=other["site_key"], vid=vid, type="identify", form="c",
                          url=f"{origin}/", traits={"email": theirs, "name": "山田 太郎",
                                                    "company": "株式会社テスト商事"})  # fmt: skip
    assert dep.post(identify, Origin=origin).status_code == 204
    email = f"limited.{secrets.token_hex(3)}@example.jp"
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "user", "add", email, "--role", "marketing",
         "--site", dep.site_key, "--password-stdin"],
        input=PASSWORD + "\n", env=dep.env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    limited = signed_in(dep.url, email)
    their_lead = lead_ids(everyone.get("/admin/leads", params={"q": theirs}))[0]
    my_lead = lead_ids(limited.get("/admin/leads", params={"q": mine}))[0]
    assert lead_ids(limited.get("/admin/leads", params={"q": theirs})) == []
    assert their_lead not in lead_ids(limited.get("/admin/leads"))
    assert their_lead not in lead_ids(limited.get("/admin/leads", params={"q": "テスト商事"}))
    assert limited.get(f"/admin/leads/{their_lead}").status_code == 404
    assert limited.get(f"/admin/leads/{their_lead}/timeline").status_code == 404
    assert limited.get(f"/admin/visitors/{vid}").status_code == 404
    assert everyone.get(f"/admin/visitors/{vid}").status_code == 200
    assert their_lead not in limited.get("/admin/duplicates").text
    assert their_lead in everyone.get("/admin/duplicates").text  # the same name and company
    merge = post(limited, f"/admin/leads/{my_lead}/merge", {"other": their_lead})
    assert merge.status_code == 404
    board = limited.get("/admin/dashboard", params={"site": other["site_key"]}).text
    assert other["site_key"] not in board  # the other site is not offered, nor shown
    assert theirs.encode() not in limited.get("/admin/leads/hot.csv").content
