"""Benchmark: 名寄せ match keys and duplicate suggestions at scale.

    python bench/duplicates.py [--leads 20000] [--postgres postgresql://…/postgres]

On a fresh SQLite database (or PostgreSQL), creates N real leads (sealed traits under
their own data keys) with Japanese names, companies and phone numbers, 5 % of them
planted as a second record of an earlier lead written differently (width, kana, legal
form, phone format). Prints: the cost of one lead's match keys (normalise + HMAC), of
writing them, of one full suggestion listing, how many pairs it proposes per
confidence, and how many planted pairs it finds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_env, drop_postgres_database, postgres_database  # noqa: E402
from identity import matchkeys  # noqa: E402
from identity.duplicates import Confidence  # noqa: E402
from privacy.personal import Person  # noqa: E402
from tracker.settings import Settings  # noqa: E402
from tracker.wiring import open_parts  # noqa: E402

FAMILY = ("佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
          "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水")  # fmt: skip
GIVEN_KANJI = "太郎花子一健翔結衣陽菜蓮大輔美咲直樹彩拓也由恵剛愛学舞悠真颯湊樹凛葵陸朝美奈優"
FIRMS = ("アシアト", "ミナト", "サクラ", "ヒカリ", "テック", "商事", "物産", "製作所", "電機", "システム")  # fmt: skip


def person(i: int, rng: random.Random) -> Person:
    # 20 family names x 1,600 given names: a few 同姓同名 per 20,000 leads, as in life
    name = f"{rng.choice(FAMILY)} {rng.choice(GIVEN_KANJI)}{rng.choice(GIVEN_KANJI)}"
    company = f"株式会社{rng.choice(FIRMS)}{rng.choice(FIRMS)}{i % 997}"
    phone = f"03-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}"
    return Person(f"user{i}@firm{i % 997}.example.jp", name, company, phone)


def variant(p: Person, i: int, rng: random.Random) -> Person:
    """The same person written another way, under another address."""
    assert p.name
    assert p.company
    assert p.phone
    company = p.company.removeprefix("株式会社") + rng.choice(["株式会社", "(株)", "㈱"])
    phone = p.phone if rng.random() < 0.5 else "+81 3 " + p.phone[3:].replace("-", " ")
    if rng.random() < 0.5:
        phone = unicodedata.normalize("NFKC", phone).translate(_FULL_WIDTH)
    keep_phone = rng.random() < 0.5  # else found by name and company alone
    return Person(f"other{i}@gmail.com", p.name.replace(" ", "　"), company,
                  phone if keep_phone else None)  # fmt: skip


_FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


async def run(settings: Settings, n: int) -> None:
    parts = await open_parts(settings)
    rng = random.Random(7)
    people: list[Person] = []
    planted: list[tuple[int, int]] = []
    originals: list[int] = []
    for i in range(n):
        if i > 10 and rng.random() < 0.05:
            j = rng.choice(originals)
            people.append(variant(people[j], i, rng))
            planted.append((j, i))
        else:
            people.append(person(i, rng))
            originals.append(i)
    matchkeys.match_values(people[0])  # loads the phone metadata once
    started = time.perf_counter()
    for p in people[:2000]:
        for kind, value in matchkeys.match_values(p):
            parts.personal.match_index(kind, value)
    per_lead_keys = (time.perf_counter() - started) / 2000
    ids, writes = [], []
    for i, p in enumerate(people):
        draft = await parts.personal.new_lead(p, now=i)
        lead, _ = await parts.store.create_lead(draft)
        t0 = time.perf_counter()
        await parts.matching.refresh(lead, p)
        writes.append(time.perf_counter() - t0)
        ids.append(lead.id)
    listings: dict[Confidence, list[float]] = {c: [] for c in Confidence}
    for _ in range(3):
        for level in Confidence:
            t0 = time.perf_counter()
            found = await parts.matching.suggestions(least=level)
            listings[level].append(time.perf_counter() - t0)
    pairs = {frozenset((s.lead, s.other)) for s in found}
    hits = sum(frozenset((ids[a], ids[b])) in pairs for a, b in planted)
    by_level = {c: sum(s.confidence == c for s in found) for c in ("certain", "likely", "possible")}
    await parts.close()
    print(f"leads: {n:,} ({len(planted):,} planted second records)")
    print(f"match keys of one lead (normalise + HMAC): {per_lead_keys * 1e6:.1f} µs")
    print(f"writing one lead's keys: {statistics.median(writes) * 1e3:.2f} ms (median)")
    for level, times in listings.items():
        ms = statistics.median(times) * 1e3
        print(f"one suggestion listing, confidence={level}: {ms:.0f} ms (median of 3)")
    print(f"pairs proposed: {len(found):,} {by_level}")
    print(f"planted pairs found: {hits:,} of {len(planted):,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--postgres", help="admin URL: run on a fresh PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extra = {}
        if args.postgres:
            extra["ASHIATO_DATABASE_URL"] = postgres_database(args.postgres, "bench_dup")
        env = bench_env(Path(tmp), **extra)
        try:
            asyncio.run(run(Settings.from_env(env), args.leads))
        finally:
            if args.postgres:
                drop_postgres_database(args.postgres, extra["ASHIATO_DATABASE_URL"])


if __name__ == "__main__":
    main()
