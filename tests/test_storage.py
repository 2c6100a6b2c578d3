"""The storage backends: migrations, sites, events, consent, a locked database, the key
store; PostgreSQL's partitions and what it must serialise across collector processes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from identity.stitching import Rules as StitchRules
from privacy.audit import Chain, check_chain
from privacy.consent import Rules
from tests import postgres
from tracker.errors import Conflict, StorageError
from tracker.storage import Store, open_store
from tracker.storage.keystore import KeyStore, WrappedKey, open_keystore
from tracker.storage.migrations_runner import migrations
from tracker.storage.postgres import partitions
from tracker.storage.records import AuditRow, ConsentReceipt, Event, LeadRow, LinkRequest

VID = "b" * 32


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> str:
    """A new, empty data store on the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'db'}"
    return postgres.create_database("ashiato_t")


@pytest.fixture
def postgres_url() -> str:
    """A new, empty PostgreSQL database (for what only that backend has to do)."""
    postgres.require()
    return postgres.create_database("ashiato_t")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = open_store(store_url)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def keystore(backend: str, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'keystore.db'}"
    else:
        url = postgres.create_database("ashiato_k")
    keys = open_keystore(url)
    await keys.migrate()
    yield keys
    await keys.close()


@pytest.mark.anyio
async def test_migrations_are_numbered_recorded_and_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    applied = await store.migrate()
    assert applied[0] == 1
    assert await store.schema_version() == applied[-1]
    assert await store.migrate() == []
    await store.close()
    if store_url.startswith("sqlite:"):
        raw = sqlite3.connect(store_url.removeprefix("sqlite:///"))
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in raw.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    else:
        conn = await asyncpg.connect(store_url)
        versions = [
            r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        ]
        await conn.close()
    assert versions == applied


@contextlib.asynccontextmanager
async def migrated_before(
    version: int, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Store]:
    """A store migrated up to just before ``version`` (after ``monkeypatch.undo()`` its
    next ``migrate`` runs ``version`` and any later ones), closed however the test ends:
    a store left open keeps pytest from exiting."""
    from tracker.storage import migrations_runner

    every = migrations_runner.migrations
    monkeypatch.setattr(migrations_runner, "migrations",
                        lambda folder: [m for m in every(folder) if m[0] < version])  # fmt: skip
    store = open_store(store_url)
    try:
        assert (await store.migrate())[-1] == version - 1
        yield store
    finally:
        await store.close()


@pytest.mark.anyio
async def test_migration_0013_copies_each_leads_touch_campaigns_beside_the_touches(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.storage.script import rows, run

    async with migrated_before(13, store_url, monkeypatch) as store:
        touches = [('{"utm_campaign": "autumn", "referrer": "x"}', '{"utm_campaign": "expo"}'),
                   ('{"referrer": "https://www.google.com/"}', None), (None, None)]  # fmt: skip

        def leads() -> object:
            for i, (first, last) in enumerate(touches):
                yield run("INSERT INTO leads (id, email_index, key_id, email, first_touch,"
                          " last_touch, created_at, updated_at) VALUES (?, ?, 'k', ?, ?, ?, 1, 1)",
                          f"ld_{i}", bytes([i]) * 32, b"sealed", first, last)  # fmt: skip

        await store.transact(leads)
        monkeypatch.undo()
        assert (await store.migrate())[0] == 13  # and any later ones

        def campaigns() -> object:
            return (yield rows("SELECT id, first_campaign, last_campaign FROM leads ORDER BY id"))

        found = await store.read(campaigns())
    assert [tuple(r) for r in found] == [("ld_0", "autumn", "expo"), ("ld_1", None, None),
                                         ("ld_2", None, None)]  # fmt: skip


@pytest.mark.anyio
async def test_migration_0014_keys_each_visitor_hour_by_its_first_page_view(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.storage.script import rows, run

    async with migrated_before(14, store_url, monkeypatch) as store:
        site = await store.add_site(key="k", name="s", origins=[], consent_mode="notice", now=0)
        hour = 3_600_000
        a, b, c = "a" * 32, "b" * 32, "c" * 32
        events = [Event(site_id=site.id, type="pageview", vid=a, at=10 * hour + 5),
                  Event(site_id=site.id, type="pageview", vid=a, at=10 * hour + 9),
                  Event(site_id=site.id, type="event", vid=b, at=10 * hour + 1),
                  Event(site_id=site.id, type="pageview", vid=b, at=10 * hour + 2),
                  Event(site_id=site.id, type="pageview", vid=a, at=12 * hour)]  # fmt: skip
        await store.write_batch(events, Rules({site.id: "notice"}))
        ids = [e.id for e in await store.visitor_events(a)] + [
            e.id for e in await store.visitor_events(b)
        ]
        # The old rows: the visitor id, not the first page view (c's has no page view left).
        old = [(10, a, -1), (12, a, 10), (10, b, -1), (11, c, -1)]

        def visitor_rows() -> object:
            for h, vid, prev in old:
                yield run("INSERT INTO rollup_visitors (site_id, hour, vid, prev_hour)"
                          " VALUES (?, ?, ?, ?)", site.id, h, vid, prev)  # fmt: skip

        await store.transact(visitor_rows)
        monkeypatch.undo()
        assert await store.migrate() == [14]

        def keyed() -> object:
            return (yield rows("SELECT site_id, hour, first_id, prev_hour FROM rollup_visitors"
                               " ORDER BY hour, first_id"))  # fmt: skip

        found = await store.read(keyed())
    first_a, first_b, later_a = ids[0], ids[4], ids[2]
    assert [tuple(r) for r in found] == sorted(
        [(site.id, 10, first_a, -1), (site.id, 10, first_b, -1), (site.id, 12, later_a, 10)],
        key=lambda r: (r[1], r[2]),
    )


@pytest.mark.anyio
async def test_sites_and_events_round_trip(store: Store) -> None:
    site = await store.add_site(
        key="k", name="shop", origins=["https://x.jp"], consent_mode="opt-in", now=5
    )
    with pytest.raises(Conflict):
        await store.add_site(key="k2", name="shop", origins=[], consent_mode="notice", now=6)
    assert await store.list_sites() == [site]
    event = Event(
        site_id=site.id,
        type="event",
        vid=VID,
        at=7,
        name="x",
        props={"plan": "pro", "n": 2, "big": 1e300, "jp": "見込み客"},
        click_ids={"gclid": "g"},
    )
    grant = ConsentReceipt("c" * 32, site.id, VID, True, False, "v1", "banner", 6)
    result = await store.write_batch([grant, event], Rules({site.id: "opt-in"}))
    assert (result.stored, result.refused, result.receipts) == (1, 0, 1)
    [back] = await store.visitor_events(VID)
    assert back == event
    assert back.id is not None
    assert await store.events_page(after_id=back.id) == []


@pytest.mark.anyio
async def test_a_replayed_consent_id_is_ignored_and_the_first_stands(store: Store) -> None:
    site = await store.add_site(key="k", name="s", origins=[], consent_mode="opt-in", now=0)
    rules = Rules({site.id: "opt-in"})
    grant = ConsentReceipt("c" * 32, site.id, VID, True, True, "v1", "banner", 10)
    replay = ConsentReceipt("c" * 32, site.id, VID, False, False, "v1", "banner", 20)
    first = await store.write_batch([grant, replay], rules)
    again = await store.write_batch(
        [replay, Event(site_id=site.id, type="pageview", vid=VID, at=30)], rules
    )
    assert (first.receipts, again.receipts, again.stored) == (1, 0, 1)
    state = await store.consent_state(site.id, VID)
    assert state is not None
    assert (state.analytics, state.marketing, state.at) == (True, True, 10)
    assert [r.at for r in await store.consent_receipts_of([VID])] == [10]


@pytest.mark.anyio
async def test_a_locked_database_is_a_storage_error(store_url: str) -> None:
    store = open_store(store_url)
    await store.migrate()
    write = store.write_batch(
        [Event(site_id=1, type="pageview", vid="c" * 32, at=1)], Rules({1: "notice"})
    )
    with pytest.raises(StorageError) as caught, _locked(store_url):
        await write
    assert "locked" in str(caught.value)
    await store.close()


@pytest.mark.anyio
async def test_a_write_waits_for_another_process_s_write_transaction(tmp_path: Path) -> None:
    """SQLite: a write that finds the write lock held (a second collector process, a CLI
    command) goes through once the lock is released, however often it had to try, and
    the connection keeps its busy timeout for what it runs outside transactions."""
    path = tmp_path / "shared.db"
    store = open_store(f"sqlite:///{path}")
    await store.migrate()
    site = await store.add_site(key="k", name="s", origins=[], consent_mode="notice", now=0)
    held = threading.Event()

    def other_process() -> None:
        with _sqlite_write_lock(path):
            held.set()
            time.sleep(0.3)

    blocker = threading.Thread(target=other_process)
    blocker.start()
    try:
        held.wait(5)
        result = await store.write_batch(
            [Event(site_id=site.id, type="pageview", vid="d" * 32, at=1)],
            Rules({site.id: "notice"}),
        )
        assert result.stored == 1
        assert len(await store.visitor_events("d" * 32)) == 1
        timeout = await store._writer.call(lambda db: db.execute("PRAGMA busy_timeout").fetchone())
        assert timeout == (5000,)
    finally:
        blocker.join()
        await store.close()


def _locked(store_url: str):  # type: ignore[no-untyped-def]
    """Another process holds the write lock (SQLite) or the events table (PostgreSQL)."""
    if store_url.startswith("postgresql:"):
        return postgres.holding(store_url, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    return _sqlite_write_lock(Path(store_url.removeprefix("sqlite:///")))


def _sqlite_write_lock(path: Path):  # type: ignore[no-untyped-def]
    from contextlib import contextmanager

    @contextmanager
    def held() -> Iterator[None]:
        blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

    return held()


@pytest.mark.anyio
async def test_an_unreachable_server_is_a_storage_error() -> None:
    store = open_store("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(StorageError) as caught:
        await store.ping()
    assert "database unavailable" in str(caught.value)
    await store.close()


@pytest.mark.anyio
async def test_the_key_store_conflicts_rewraps_and_keeps_the_ledger(keystore: KeyStore) -> None:
    keys = [WrappedKey(f"{n:016x}", "a" * 16, bytes([n]) * 61, n) for n in range(3)]
    for key in keys:
        await keystore.put(key)
    with pytest.raises(Conflict):
        await keystore.put(keys[0])
    await keystore.delete(keys[1].id)  # a destroy racing a rotation wins
    pairs = [(k, WrappedKey(k.id, "b" * 16, b"new" + k.wrapped, k.created_at)) for k in keys]
    assert await keystore.rewrap(pairs) == 2
    assert await keystore.rewrap(pairs) == 0
    assert await keystore.count_by_kek() == {"b" * 16: 2}
    assert await keystore.get(keys[1].id) is None
    entry = await keystore.record_erasure("pr_1", ["lead"], [VID], [keys[0].id], 5)
    await keystore.finish_erasure(entry.seq, 6)
    [back] = await keystore.ledger()
    assert (back.lead_ids, back.vids, back.key_ids, back.done_at) == (
        ("lead",),
        (VID,),
        (keys[0].id,),
        6,
    )


@pytest.mark.anyio
async def test_whole_expired_months_are_dropped(store: Store, store_url: str, backend: str) -> None:
    site = await store.add_site(key="k", name="s", origins=[], consent_mode="notice", now=0)
    now = int(time.time() * 1000)
    this_month = partitions.month_of(now)
    assert this_month is not None
    last_month, later = partitions.shift(this_month, -1), partitions.shift(this_month, 6)
    ancient = now - 800 * 86_400_000
    ats = [ancient, last_month + 1, last_month + 2, this_month + 1, later + 1]
    events = [Event(site_id=site.id, type="pageview", vid=VID, at=at) for at in ats]
    assert (await store.write_batch(events, Rules({site.id: "notice"}))).stored == 5
    dropped = await store.drop_expired_partitions(this_month)
    left = [e.at for e in await store.visitor_events(VID)]
    if backend == "sqlite":  # one table: nothing to drop, the batched purge does it all
        assert (dropped, left) == (0, ats)
    else:  # last month's partition went whole; the backfilled one stays for the purge
        assert (dropped, left) == (2, [ancient, this_month + 1, later + 1])
        assert await store.drop_expired_partitions(this_month) == 0
        conn = await asyncpg.connect(store_url)
        months = await partitions.existing(conn)
        in_default = await conn.fetchval("SELECT array_agg(at) FROM events_default")
        await conn.close()
        assert later in months, "a month past those made ahead is made when needed"
        assert last_month not in months
        assert in_default == [ancient]


@pytest.mark.anyio
async def test_postgres_collectors_migrating_at_once_apply_each_migration_once(
    postgres_url: str,
) -> None:
    stores = [open_store(postgres_url) for _ in range(4)]
    applied = await asyncio.gather(*(s.migrate() for s in stores))
    assert sorted(map(len, applied))[:3] == [0, 0, 0]
    assert max(applied) == [number for number, _, _ in migrations("postgres")]
    for s in stores:
        await s.close()


@pytest.mark.anyio
async def test_postgres_one_email_identified_by_two_collectors_makes_one_lead(
    postgres_url: str,
) -> None:
    a, b = open_store(postgres_url), open_store(postgres_url)
    await a.migrate()
    for attempt in range(20):
        index = f"index-{attempt}".encode()
        leads = [_lead(f"lead-{attempt}-{n}", index) for n in range(2)]
        results = await asyncio.gather(a.create_lead(leads[0]), b.create_lead(leads[1]))
        assert sorted(created for _, created in results) == [False, True]
        assert results[0][0].id == results[1][0].id
    changes = await a.changes_page(after=0, limit=100)
    assert [c.kind for c in changes] == ["created"] * 20
    await a.close()
    await b.close()


@pytest.mark.anyio
async def test_postgres_a_visitor_is_linked_by_one_collector_at_a_time(postgres_url: str) -> None:
    stores = [open_store(postgres_url) for _ in range(3)]
    await stores[0].migrate()
    site = await stores[0].add_site(key="k", name="s", origins=[], consent_mode="notice", now=0)
    leads = [(await stores[0].create_lead(_lead(f"lead-{n}", b"%d" % n)))[0] for n in range(3)]
    requests = [LinkRequest(VID, lead.id, site.id, "form", 100 + n, None, None)
                for n, lead in enumerate(leads)]  # fmt: skip
    outcomes = await asyncio.gather(
        *(s.link_visitor(r, StitchRules()) for s, r in zip(stores, requests, strict=True))
    )
    links = await stores[0].links_of_visitor(VID)
    assert sorted(o.action for o in outcomes) == ["first", "switched", "switched"]
    assert [link.ended_at is None for link in links].count(True) == 1
    for s in stores:
        await s.close()


@pytest.mark.anyio
async def test_postgres_audit_appends_from_two_collectors_form_one_chain(postgres_url: str) -> None:
    a, b = open_store(postgres_url), open_store(postgres_url)
    await a.migrate()
    chain = Chain(b"k" * 32)
    row = AuditRow(0, 1, "cli", "test", "*", {"n": 1})
    await asyncio.gather(*(s.append_audit(row, chain) for s in [a, b] * 15))
    rows = await a.audit_page(after=0, limit=100)
    assert [r.seq for r in rows] == list(range(1, 31))
    assert check_chain(rows, chain.key).intact
    await a.close()
    await b.close()


def _lead(lead_id: str, index: bytes) -> LeadRow:
    return LeadRow(lead_id, index, "k" * 16, b"sealed", None, None, None, None, None, None,
                   None, 1, 1)  # fmt: skip


def test_every_unapplied_migration_is_pending_not_only_those_above_the_highest() -> None:
    from tracker.storage.migrations_runner import migrations, pending

    numbers = [m[0] for m in migrations("sqlite")]
    assert numbers == sorted(set(numbers)), "migration numbers are unique"
    # A database that got later migrations before an earlier-numbered one landed.
    applied = set(numbers) - {numbers[1], numbers[-1]}
    assert [m[0] for m in pending("sqlite", applied)] == [numbers[1], numbers[-1]]
    assert pending("postgres", {m[0] for m in migrations("postgres")}) == []
