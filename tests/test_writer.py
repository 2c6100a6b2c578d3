"""Group commit over the real SQLite backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from privacy.consent import Rules
from tests.waiting import async_wait_until
from tracker.errors import StorageError
from tracker.http_errors import Overloaded
from tracker.metrics import Metrics
from tracker.storage import Store, open_store
from tracker.storage.records import Event, WriteItem, WriteResult
from tracker.writer import Writer


def event(n: int) -> Event:
    return Event(site_id=1, type="pageview", vid=f"{n:032x}", at=n, url="https://x.jp/")


def notice_writes(store: Store) -> Callable[[Sequence[WriteItem]], Awaitable[WriteResult]]:
    return lambda items: store.write_batch(items, Rules({1: "notice"}))


async def with_site(path: Path) -> Store:
    store = open_store(f"sqlite:///{path}")
    await store.migrate()
    await store.add_site(key="k", name="s", origins=["https://x.jp"], consent_mode="notice", now=0)
    return store


@pytest.mark.anyio
async def test_concurrent_requests_share_transactions(tmp_path: Path) -> None:
    store = await with_site(tmp_path / "db")
    metrics = Metrics()
    writer = Writer(notice_writes(store), metrics=metrics, batch_max=64, interval=0.005)
    writer.start()
    await asyncio.gather(*(writer.submit([event(i)]) for i in range(300)))
    assert await store.count_events() == 300  # every awaited submit is committed
    assert metrics.batch_sizes.count < 300 / 4  # ...in far fewer transactions
    await writer.close()
    await store.close()


@pytest.mark.anyio
async def test_full_queue_is_refused_with_retry_after(tmp_path: Path) -> None:
    store = await with_site(tmp_path / "db")
    writer = Writer(
        notice_writes(store), metrics=Metrics(), batch_max=10, interval=10, queue_max=10
    )
    writer.start()
    waiting = asyncio.ensure_future(writer.submit([event(i) for i in range(8)]))
    await async_wait_until(lambda: writer.waiting == 8, what="the first 8 events queued")
    with pytest.raises(Overloaded) as caught:
        await writer.submit([event(100 + i) for i in range(5)])
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "1"
    await writer.close()  # close flushes what waits, long interval or not
    await waiting
    assert await store.count_events() == 8
    await store.close()


@pytest.mark.anyio
async def test_storage_failure_answers_overloaded_and_recovers(tmp_path: Path) -> None:
    store = await with_site(tmp_path / "db")
    failing = True

    async def write(events: Sequence[WriteItem]) -> WriteResult:
        if failing:
            raise StorageError("database unavailable: disk full")
        return await notice_writes(store)(events)

    metrics = Metrics()
    writer = Writer(write, metrics=metrics, interval=0)
    writer.start()
    with pytest.raises(Overloaded):
        await writer.submit([event(1)])
    assert metrics.commit_failures == 1
    failing = False
    await writer.submit([event(2)])
    assert [e.vid for e in await store.visitor_events(f"{2:032x}")] == [f"{2:032x}"]
    assert writer.waiting == 0
    await writer.close()
    await store.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
