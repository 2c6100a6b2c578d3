"""A month of traffic for the marketing pages' tests: anonymous visitors over 30 days
(some from campaigns), one person who browsed the pricing pages anonymously days before
filling in the contact form (and is hot), a warm lead, and a 名寄せ pair.

Past page views are written through the store with their times (the collector takes
the server's clock); today's identifications go through the real beacon endpoint, so
stitching, touches and scoring run as in production.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacy.consent import Rules
from tests.conftest import SITE_ORIGIN, Deployment
from tracker.settings import Settings
from tracker.storage.records import Event
from tracker.wiring import open_parts

DAY_MS = 86_400_000
CAMPAIGN = "autumn-webinar"
HOT_EMAIL = "hanako.tanaka@sample-shoji.co.jp"
HOT_NAME = "田中 花子"
RULES = """
[grades]
hot = 100
warm = 40
rearm_below = 80

[decay]
half_life_days = 30

[[rule]]
id = "pricing"
name = "料金ページを閲覧"
when = { type = "pageview", path = "/pricing*" }
points = 40
fire = "once_per_object"

[[rule]]
id = "case-study"
name = "導入事例を閲覧"
when = { type = "pageview", path = "/case-studies*" }
points = 15
fire = "once"

[[rule]]
id = "whitepaper"
name = "資料ダウンロード"
when = { type = "event", name = "download" }
points = 25

[[rule]]
id = "form"
name = "フォーム送信"
when = { type = "identify" }
points = 30
fire = "once"
"""
PAGES = [
    ("/", "足あと商事 | B2Bマーケティング支援"),
    ("/features", "機能一覧"),
    ("/pricing", "料金プラン"),
    ("/blog/lead-scoring", "リードスコアリング入門"),
    ("/blog/nayose", "名寄せの基本"),
    ("/case-studies", "導入事例"),
    ("/contact", "お問い合わせ"),
]
SOURCES = [
    (None, None, None, "https://www.google.com/"),
    ("newsletter", "email", CAMPAIGN, None),
    ("google", "cpc", "brand-search", "https://www.google.com/"),
    (None, None, None, "https://search.yahoo.co.jp/"),
    (None, None, None, None),
]
DEVICES = [("desktop", "Chrome", "Windows"), ("mobile", "Safari", "iOS"),
           ("desktop", "Edge", "Windows"), ("desktop", "Safari", "macOS")]  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    hot_vid: str
    anonymous_vid: str
    campaign_events: int


def _session(site_id: int, vid: str, at: int, pages: list[tuple[str, str]], *, source: Any,
             device: Any) -> list[Event]:  # fmt: skip
    utm_source, utm_medium, utm_campaign, referrer = source
    sid, events = secrets.token_hex(8), []
    for n, (path, title) in enumerate(pages):
        query = f"?utm_source={utm_source}&utm_medium={utm_medium}&utm_campaign={utm_campaign}"
        first = n == 0 and utm_source is not None
        events.append(Event(
            site_id=site_id, type="pageview", vid=vid, sid=sid, at=at + n * 45_000,
            url=f"{SITE_ORIGIN}{path}{query if first else ''}", title=title,
            referrer=referrer if n == 0 else f"{SITE_ORIGIN}{pages[n - 1][0]}",
            utm_source=utm_source if first else None, utm_medium=utm_medium if first else None,
            utm_campaign=utm_campaign if first else None,
            device=device[0], browser=device[1], os=device[2],
        ))  # fmt: skip
    return events


def history(site_id: int, hot_vid: str, now: int, rng: random.Random) -> list[Event]:
    """60 anonymous visitors over 30 days, and the hot person's two anonymous visits."""
    events: list[Event] = []
    for n in range(60):
        vid = secrets.token_hex(16)
        for _ in range(rng.randint(1, 3)):
            at = now - rng.randint(1, 29) * DAY_MS - rng.randint(0, 8 * 3600_000)
            pages = rng.sample(PAGES[:6], rng.randint(1, 4))
            events += _session(site_id, vid, at, pages, source=SOURCES[n % len(SOURCES)],
                               device=DEVICES[n % len(DEVICES)])  # fmt: skip
    events += _session(site_id, hot_vid, now - 6 * DAY_MS, [PAGES[0], PAGES[1]], source=SOURCES[1],
                       device=DEVICES[0])  # fmt: skip
    events += _session(site_id, hot_vid, now - 3 * DAY_MS,
                       [PAGES[2], ("/pricing/enterprise", "エンタープライズプラン"), PAGES[5]],
                       source=SOURCES[0], device=DEVICES[0])  # fmt: skip
    return events


def _in_thread(work: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may run a loop here
        return pool.submit(asyncio.run, work).result()


def load_rules(dep: Deployment) -> None:
    path = Path(dep.tmp) / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "scoring", "load", str(path), "--site", dep.site_key],
        env=dep.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def seed_history(dep: Deployment) -> Seeded:
    """Before the server starts: the rules, and 30 days of past page views."""
    load_rules(dep)
    now, hot_vid = int(time.time() * 1000), secrets.token_hex(16)

    async def work() -> Seeded:
        parts = await open_parts(Settings.from_env(dep.env), migrate=False)
        try:
            site = next(s for s in await parts.store.list_sites() if s.key == dep.site_key)
            events = history(site.id, hot_vid, now, random.Random(7))
            await parts.store.write_batch(events, Rules({site.id: site.consent_mode}))
            anonymous = next(e.vid for e in events if e.vid != hot_vid)
            campaign = sum(1 for e in events if e.utm_campaign == CAMPAIGN)
            return Seeded(hot_vid, anonymous, campaign)
        finally:
            await parts.close()

    seeded: Seeded = _in_thread(work())
    return seeded


def identify(dep: Deployment, vid: str, traits: dict[str, str], *, path: str = "/contact",
             download: bool = False) -> None:  # fmt: skip
    """Today: the contact page, its form (the identification), maybe a download."""
    sid = secrets.token_hex(8)
    beacons = [
        dep.beacon(vid=vid, sid=sid, url=SITE_ORIGIN + path, title="お問い合わせ"),
        dep.beacon(vid=vid, sid=sid, type="identify", form="contact", url=SITE_ORIGIN + path,
                   traits=traits),
    ]  # fmt: skip
    if download:
        beacons.append(dep.beacon(vid=vid, sid=sid, type="event", name="download",
                                  url=SITE_ORIGIN + "/whitepaper",
                                  props={"file": "whitepaper.pdf"}))  # fmt: skip
    for beacon in beacons:
        assert dep.post(beacon).status_code == 204, beacon


def seed_leads(dep: Deployment, seeded: Seeded) -> None:
    """Once the server runs: the hot person's form, a warm lead, and a 名寄せ pair."""
    identify(dep, seeded.hot_vid, {"email": HOT_EMAIL, "name": HOT_NAME,
                                   "company": "株式会社サンプル商事", "phone": "03-1234-5678"},
             download=True)  # fmt: skip
    identify(
        dep,
        secrets.token_hex(16),
        {
            "email": "ichiro.suzuki@example-kogyo.co.jp",
            "name": "鈴木 一郎",
            "company": "例示工業株式会社",
        },
    )
    identify(
        dep,
        secrets.token_hex(16),
        {
            "email": "taro.yamada@gmail.com",
            "name": "山田 太郎",
            "company": "株式会社やまだ",
            "phone": "090-1111-2222",
        },
    )
    identify(
        dep,
        secrets.token_hex(16),
        {
            "email": "t.yamada@yamada.co.jp",
            "name": "山田 太郎",
            "company": "やまだ株式会社",
            "phone": "09011112222",
        },
    )
