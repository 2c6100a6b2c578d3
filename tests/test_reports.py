"""The dashboard's counts (tracker.reports over the roll-ups) equal counts computed here
from the raw events, on randomized traffic, after an erasure and after a retention run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from identity.service import Identified, Identity
from privacy.consent import Rules
from privacy.retention import Policy, Retention
from tests.conftest import SITE_ORIGIN, deployment_env, make_deployment
from tests.servers import cli_json
from tracker.reports import Dashboard, Filters, Reports, date_range, matching, summarize
from tracker.settings import Settings
from tracker.storage.records import Event, Site
from tracker.storage.script import Script, value
from tracker.storage.tables.tally import tally
from tracker.wiring import Parts, open_parts

DAY = 86_400_000
START = dt.date(2026, 10, 1)
T0 = int(dt.datetime(2026, 9, 30, tzinfo=dt.UTC).timestamp() * 1000)
PATHS = ["/", "/pricing", "/blog/a", "/blog/b", "/contact"]
REFERRERS = [None, "https://www.google.com/search", "https://news.example.net/x"]
UTM = [(None, None, None), ("news", "email", "autumn"), ("google", "cpc", "brand")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def parts(backend: str, tmp_path: Path) -> AsyncIterator[Parts]:
    opened = await open_parts(Settings.from_env(deployment_env(tmp_path, backend)))
    yield opened
    await opened.close()


def traffic(site: Site, rng: random.Random) -> list[Event]:
    """Sessions over 12 days from 30 visitors (some return), with other events between."""
    events = []
    vids = [f"{rng.getrandbits(128):032x}" for _ in range(30)]
    for _ in range(120):
        vid, sid = rng.choice(vids), f"{rng.getrandbits(64):016x}"
        at = T0 + rng.randrange(12 * DAY)
        source, medium, campaign = rng.choice(UTM)
        device = rng.choice(["desktop", "mobile"])
        for n in range(rng.randint(1, 5)):
            at += rng.randrange(20 * 60_000)
            kind = "pageview" if n == 0 or rng.random() < 0.8 else "event"
            events.append(Event(site.id, kind, vid, at, sid=rng.choice([sid, sid, None]),
                                url="https://www.example.co.jp" + rng.choice(PATHS),
                                referrer=rng.choice(REFERRERS) if n == 0 else None,
                                utm_source=source if n == 0 else None,
                                utm_medium=medium if n == 0 else None,
                                utm_campaign=campaign if n == 0 else None,
                                device=device, browser="Chrome", os="Windows"))  # fmt: skip
    rng.shuffle(events)  # storage order is arrival order, not event time
    return events


async def write(parts: Parts, events: list[Event], rng: random.Random) -> None:
    """In batches, with the roll-ups' catch-up now and then, a few page views at a time
    (the rest is left to the dashboard, which catches up before it reads)."""
    rules = Rules({e.site_id: "notice" for e in events})
    while events:
        size = rng.randint(1, 40)
        await parts.store.write_batch(events[:size], rules)
        events = events[size:]
        if rng.random() < 0.3:
            await parts.store.catch_up_rollups(limit=rng.randint(1, 30))


async def raw_counts(parts: Parts, site_id: int, tz: str, days: int) -> dict[str, Any]:
    """The dashboard's numbers, computed directly from every stored event."""
    zone, events, after = ZoneInfo(tz), list[Event](), 0
    while page := await parts.store.events_page(after_id=after, limit=1000):
        events += page
        after = page[-1].id or 0
    start = int(dt.datetime.combine(START, dt.time(), zone).timestamp() * 1000)

    def day(at: int) -> int:
        return (dt.datetime.fromtimestamp(at / 1000, zone).date() - START).days

    views = [e for e in events if e.type == "pageview" and e.site_id == site_id]
    views.sort(key=lambda e: e.id or 0)
    first: dict[tuple[str, str], Event] = {}
    for e in views:
        first.setdefault((e.vid, e.sid or ""), e)
    inside = [e for e in views if 0 <= day(e.at) < days]
    entries = [e for e in first.values() if 0 <= day(e.at) < days]
    per_day: list[set[str]] = [set() for _ in range(days)]
    for e in inside:
        per_day[day(e.at)].add(e.vid)
    return {
        "visitors": [len(s) for s in per_day],
        "pageviews": [sum(1 for e in inside if day(e.at) == d) for d in range(days)],
        "sessions": [sum(1 for e in entries if day(e.at) == d) for d in range(days)],
        "total_visitors": len({e.vid for e in inside}),
        "pages": Counter(urlsplit(e.url or "").path for e in inside),
        "entry_pages": Counter(urlsplit(e.url or "").path for e in entries),
        "referrers": Counter(urlsplit(e.referrer or "").hostname or "" for e in entries),
        "campaigns": Counter(e.utm_campaign or "" for e in entries),
        "devices": Counter(e.device or "" for e in entries),
        "start": start,
    }


def shown(board: Dashboard) -> dict[str, Any]:
    return {
        "visitors": [d.visitors for d in board.days],
        "pageviews": [d.pageviews for d in board.days],
        "sessions": [d.sessions for d in board.days],
        "total_visitors": board.totals.visitors,
        "pages": Counter({r.value: r.pageviews for r in board.top["pages"]}),
        "entry_pages": Counter({r.value: r.sessions for r in board.top["entry_pages"]}),
        "referrers": Counter({r.value: r.sessions for r in board.top["referrers"]}),
        "campaigns": Counter({r.value: r.sessions for r in board.top["campaigns"]}),
        "devices": Counter({r.value: r.sessions for r in board.top["devices"]}),
    }


async def check(parts: Parts, site: Site) -> None:
    reports = Reports(parts.store, now=lambda: T0 / 1000 + 20 * 86_400)
    for tz in ("Asia/Tokyo", "UTC", "America/New_York", "Australia/Sydney"):  # Sydney: DST
        board = await reports.dashboard(site.id, START, START + dt.timedelta(days=9), tz=tz,
                                        limit=100)  # fmt: skip
        assert board.source == "rollups"
        expected = await raw_counts(parts, site.id, tz, 10)
        del expected["start"]
        assert shown(board) == {k: +v if isinstance(v, Counter) else v
                                for k, v in expected.items()}  # fmt: skip
        # The same range read from raw page views (as with filters) says the same.
        span = date_range(START, START + dt.timedelta(days=9), tz)
        series, visitors, top = await reports._from_events(site.id, span, Filters(), 100)
        assert [s[0] for s in series] == expected["pageviews"]
        assert [s[1] for s in series] == expected["sessions"]
        assert visitors == [*expected["visitors"], expected["total_visitors"]]
        assert top == board.top
        # Filters over UTM start from the tagged page views: the same as filtering all.
        views, earlier = await parts.store.page_views(site.id, span.bounds[0], span.bounds[-1])
        for filters in (Filters(campaign="autumn"), Filters(source="google", page="/pricing"),
                        Filters(medium="email", campaign="brand")):  # fmt: skip
            narrowed = await reports._from_events(site.id, span, filters, 100)
            assert narrowed == summarize(tally(matching(views, filters), earlier), span, 100)
        assert narrowed[0] == [[0, 0]] * 10  # that pair is in no session


@pytest.mark.anyio
async def test_dashboard_counts_equal_raw_counts_after_erasure_and_retention(
    parts: Parts,
) -> None:
    rng = random.Random(14)
    site = await parts.store.add_site(key="k" * 16, name="shop", consent_mode="notice",
                                      origins=["https://www.example.co.jp"], now=T0)  # fmt: skip
    events = traffic(site, rng)
    await write(parts, events, rng)
    assert sum(d.pageviews for d in (await Reports(parts.store).dashboard(
        site.id, START, START + dt.timedelta(days=9))).days) > 100  # fmt: skip
    await check(parts, site)

    # A lead made on day 3: a new lead that day, attributed to its first page view's
    # campaign (first touch).
    vid = next(e.vid for e in events if e.vid != events[0].vid)
    first = min((e for e in events if e.vid == vid and e.type == "pageview"),
                key=lambda e: e.at)  # fmt: skip
    then = T0 + 4 * DAY + 12 * 3_600_000
    identity = Identity(parts.store, parts.personal, site_secret=lambda site: None,
                        now=lambda: then / 1000)  # fmt: skip
    made = await identity.identify(site, vid, {"email": "b@example.jp"}, evidence="api", at=then)
    assert isinstance(made, Identified)
    board = await Reports(parts.store).dashboard(site.id, START, START + dt.timedelta(days=9))
    assert [d.new_leads for d in board.days] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert [(a.campaign, a.first_touch_leads) for a in board.attribution
            if a.first_touch_leads] == [(first.utm_campaign or "", 1)]  # fmt: skip

    # Erasure: a person identified on a shared browser half-way through its history,
    # with page views the roll-ups have not counted yet (the job has not reached them).
    vid = events[0].vid
    rules = Rules({site.id: "notice"})
    await parts.store.write_batch([dataclasses.replace(e, id=None, at=e.at + 3_600_000)
                                   for e in events if e.vid == vid], rules)  # fmt: skip
    mid = sorted(e.at for e in events if e.vid == vid)[1]
    found = await parts.identity.identify(site, vid, {"email": "a@example.jp"},
                                          evidence="api", at=mid)  # fmt: skip
    assert isinstance(found, Identified)
    subject = await parts.requests.find(lead=found.lead.id)
    await parts.requests.erase(subject, actor="test")
    await check(parts, site)

    # Retention: events before day 5 (10:30 UTC) go.
    now = T0 + 5 * DAY + 10 * 3_600_000 + 1_800_000 + 30 * DAY
    retention = Retention(parts.store, parts.requests, parts.audit,
                          Policy({"events": 30, "visitors": 400, "leads": 800,
                                  "receipts": 1200}), now=lambda: now / 1000)  # fmt: skip
    report = await retention.run()
    assert report.counts["events"] > 0
    await check(parts, site)


def test_the_dashboard_over_the_api(tmp_path: Path) -> None:
    """Page views sent to the collector are on today's dashboard at once; bad input is a
    400 with a message; another site's key is a 404."""
    dep = make_deployment(tmp_path, backend="sqlite")
    key = cli_json(dep.env, "apikey", "create", "r", "--scope", "read")["key"]
    dep.server.start()
    try:
        vids = [secrets.token_hex(16) for _ in range(3)]
        for n, vid in enumerate(vids * 2):
            url = f"{SITE_ORIGIN}/pricing?utm_source=news&utm_campaign=autumn" if n < 3 else None
            assert dep.post(dep.beacon(vid=vid, sid=vid[:16], **({"url": url} if url else {}))
                            ).status_code in (200, 202, 204)  # fmt: skip
        today = dt.datetime.now(dt.UTC).date().isoformat()
        headers = {"Authorization": f"Bearer {key}"}

        def get(**params: str) -> httpx.Response:
            return httpx.get(f"{dep.url}/api/v1/reports/dashboard", headers=headers,
                             params={"site": dep.site_key, "from": today, "to": today,
                                     "tz": "UTC"} | params)  # fmt: skip

        board = get().json()
        assert board["source"] == "rollups"
        assert board["days"][0]["pageviews"] == 6
        assert board["days"][0]["visitors"] == 3
        assert board["totals"]["sessions"] == 3
        assert board["live_visitors"] == 3
        assert board["top"]["campaigns"] == [{"value": "autumn", "pageviews": 0, "sessions": 3}]
        filtered = get(campaign="autumn", page="/pricing").json()
        assert filtered["source"] == "events"
        assert filtered["totals"]["pageviews"] == 6
        assert get(campaign="other").json()["totals"]["pageviews"] == 0
        for bad in ({"from": "yesterday"}, {"tz": "Mars/Olympus"}, {"to": "2000-01-01"}):
            answer = get(**bad)
            assert answer.status_code == 400, bad
            assert answer.json()["error"], bad
        assert get(site="nosuchsite").status_code == 404
    finally:
        dep.server.stop()
    assert "Traceback" not in dep.server.logs()


def _view(site: Site, vid: str, at: int, path: str = "/") -> Event:
    return Event(site.id, "pageview", vid, at, sid=vid[:16], url=f"https://www.example.co.jp{path}")


async def _one_view_each(parts: Parts, visitors: int) -> tuple[Site, Rules, list[str]]:
    """A new site and one page view on day 1 from each of ``visitors`` visitors."""
    site = await parts.store.add_site(key="k" * 16, name="shop", consent_mode="notice",
                                      origins=["https://www.example.co.jp"], now=T0)  # fmt: skip
    rules = Rules({site.id: "notice"})
    vids = [f"{n:032x}" for n in range(visitors)]
    await parts.store.write_batch([_view(site, v, T0 + DAY + n) for n, v in enumerate(vids)],
                                  rules)  # fmt: skip
    return site, rules, vids


@pytest.mark.anyio
async def test_with_rollups_off_the_dashboard_reads_events_and_on_again_they_catch_up(
    parts: Parts,
) -> None:
    site, rules, vids = await _one_view_each(parts, 5)
    until = START + dt.timedelta(days=2)
    parts.store.rollups_on = False
    board = await Reports(parts.store).dashboard(site.id, START, until, tz="UTC")
    assert (board.source, board.totals.pageviews, board.totals.visitors) == ("events", 5, 5)
    await parts.store.write_batch([_view(site, vids[0], T0 + DAY + 9, "/pricing")], rules)
    parts.store.rollups_on = True
    board = await Reports(parts.store).dashboard(site.id, START, until, tz="UTC")
    assert (board.source, board.totals.pageviews, board.totals.visitors) == ("rollups", 6, 5)
    assert board.totals.sessions == 5  # the sixth view is in the first visitor's session
    assert await parts.store.catch_up_rollups() == 0  # nothing left


def test_the_collector_counts_committed_page_views_within_seconds(tmp_path: Path) -> None:
    """The catch-up job runs in the collector: without any dashboard read, the roll-ups
    count every page view a moment after it was committed."""
    import sqlite3
    import time

    dep = make_deployment(tmp_path, backend="sqlite")
    dep.server.start()
    try:
        for _ in range(20):
            assert dep.post(dep.beacon(vid=secrets.token_hex(16))).status_code in (200, 202, 204)
        path = dep.database_url.removeprefix("sqlite:///")
        deadline, counted = time.monotonic() + 10, None
        while time.monotonic() < deadline:
            with sqlite3.connect(path) as db:
                counted = db.execute("SELECT COALESCE(SUM(pageviews), 0) FROM rollup_counts"
                                     " WHERE dim = ''").fetchone()[0]  # fmt: skip
            if counted == 20:
                break
            time.sleep(0.2)
        assert counted == 20
    finally:
        dep.server.stop()
    assert "Traceback" not in dep.server.logs()


@pytest.mark.anyio
async def test_on_postgresql_the_mark_never_passes_a_transaction_still_writing_events(
    tmp_path: Path,
) -> None:
    """Ids are taken before commit: an insert still open with a lower id than a
    committed one must not be passed over (it would never be counted)."""
    import time

    import asyncpg

    from tracker.errors import StorageError

    env = deployment_env(tmp_path, "postgresql")
    opened = await open_parts(Settings.from_env(env))
    try:
        store = opened.store
        site = await store.add_site(key="k" * 16, name="shop", consent_mode="notice",
                                    origins=["https://www.example.co.jp"], now=T0)  # fmt: skip
        url = env["ASHIATO_DATABASE_URL"]
        insert = ("INSERT INTO events (site_id, type, vid, at, sid, url)"
                  " VALUES ($1, 'pageview', $2, $3, $4, '/') RETURNING id")  # fmt: skip
        slow, fast = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            open_tx = slow.transaction()
            await open_tx.start()
            low = await slow.fetchval(insert, site.id, "a" * 32, T0 + DAY, "a" * 16)
            high = await fast.fetchval(insert, site.id, "b" * 32, T0 + DAY, "b" * 16)
            assert low < high
            # Waiting on it would hold ingest up (writers queue behind the lock): the
            # catch-up gives up after a moment instead, and the mark stays put.
            started = time.monotonic()
            with pytest.raises(StorageError, match="locked"):
                await store.catch_up_rollups()
            assert time.monotonic() - started < 3
            assert await store.read(_tallied()) < low
            await open_tx.commit()
            await store.catch_up_rollups()
        finally:
            await slow.close()
            await fast.close()
        board = await Reports(store).dashboard(site.id, START, START + dt.timedelta(days=2))
        assert (board.source, board.totals.pageviews) == ("rollups", 2)
    finally:
        await opened.close()


@pytest.mark.anyio
async def test_a_step_overtaken_by_a_delete_is_counted_again_and_reused_ids_count(
    parts: Parts,
) -> None:
    """A catch-up step is counted without the write lock and applied under it: a delete
    in between makes it start over. SQLite gives a deleted highest id to the next insert:
    such a page view is counted all the same."""
    from functools import partial

    from tracker.storage.tables import catchup

    site, rules, vids = await _one_view_each(parts, 6)
    until, _ = await parts.store.transact(catchup.horizon)
    step = await parts.store.read(catchup.plan(until, 1000))
    assert step is not None
    # The newest visitor is erased meanwhile (its page view had the highest id).
    found = await parts.identity.identify(site, vids[-1], {"email": "z@example.jp"},
                                          evidence="api", at=T0 + DAY)  # fmt: skip
    assert isinstance(found, Identified)
    await parts.requests.erase(await parts.requests.find(lead=found.lead.id), actor="test")
    assert not await parts.store.transact(partial(catchup.commit, step))
    await parts.store.catch_up_rollups()
    # A page view counted, then erased: on SQLite its id, the highest, goes to the next
    # page view, which counts all the same.
    newest = f"{99:032x}"
    await parts.store.write_batch([_view(site, newest, T0 + DAY + 40)], rules)
    await parts.store.catch_up_rollups()
    found = await parts.identity.identify(site, newest, {"email": "y@example.jp"},
                                          evidence="api", at=T0 + DAY)  # fmt: skip
    assert isinstance(found, Identified)
    await parts.requests.erase(await parts.requests.find(lead=found.lead.id), actor="test")
    await parts.store.write_batch([_view(site, vids[0], T0 + DAY + 50, "/pricing")], rules)
    board = await Reports(parts.store).dashboard(site.id, START, START + dt.timedelta(days=2),
                                                 tz="UTC")  # fmt: skip
    assert (board.source, board.totals.pageviews, board.totals.visitors) == ("rollups", 6, 5)
    assert board.totals.sessions == 5


def _tallied() -> Script[int]:
    return int((yield value("SELECT tallied FROM rollup_state WHERE id = 1")))
