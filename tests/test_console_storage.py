"""The console's tables (tracker.storage.tables.console) on both databases: users by
email index, sessions replaced and swept, the sign-in failure window, outbox reads."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from privacy.audit import Chain
from tests import postgres
from tracker.storage import Store, open_store
from tracker.storage.records import (
    AuditRow,
    ConsoleSession,
    ConsoleUser,
    OutboxItem,
    Webhook,
)

NOW = 1_800_000_000_000
MINUTE = 60_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    url = (f"sqlite:///{tmp_path / 'console.db'}" if backend == "sqlite"
           else postgres.create_database("ashiato_c"))  # fmt: skip
    opened = open_store(url)
    await opened.migrate()
    yield opened
    await opened.close()


def user(user_id: str, index: bytes) -> ConsoleUser:
    return ConsoleUser(user_id, index, b"sealed", "legal", "$argon2id$x", None, "ja",
                       "Asia/Tokyo", NOW)  # fmt: skip


@pytest.mark.anyio
async def test_users_are_unique_by_email_index_and_updates_end_sessions(store: Store) -> None:
    alice = user("u_a", b"\x01" * 32)
    assert await store.add_console_user(alice)
    assert not await store.add_console_user(user("u_b", b"\x01" * 32))  # same email
    assert await store.console_user_by_index(b"\x01" * 32) == alice
    await store.start_console_session(
        ConsoleSession(b"t1", "u_a", NOW, NOW, NOW), replaces=None, stale=0
    )
    changed = dataclasses.replace(alice, language="en", time_zone="Europe/Berlin")
    await store.update_console_user(changed, end_sessions=False)
    assert await store.console_session(b"t1") is not None
    await store.update_console_user(dataclasses.replace(changed, disabled_at=NOW),
                                    end_sessions=True)  # fmt: skip
    assert await store.console_session(b"t1") is None
    assert [u.id for u in await store.console_users()] == ["u_a"]
    assert (await store.console_users())[0].disabled_at == NOW


@pytest.mark.anyio
async def test_a_new_session_replaces_the_old_one_and_sweeps_idle_ones(store: Store) -> None:
    assert await store.add_console_user(user("u_a", b"\x02" * 32))
    await store.start_console_session(
        ConsoleSession(b"idle", "u_a", NOW - 60 * MINUTE, NOW - 60 * MINUTE, NOW),
        replaces=None, stale=0,
    )  # fmt: skip
    await store.start_console_session(
        ConsoleSession(b"old", "u_a", NOW, NOW, NOW), replaces=None, stale=0
    )
    await store.start_console_session(
        ConsoleSession(b"new", "u_a", NOW, NOW, NOW), replaces=b"old", stale=NOW - 30 * MINUTE
    )
    assert await store.console_session(b"old") is None
    assert await store.console_session(b"idle") is None
    await store.touch_console_session(b"new", seen_at=NOW + MINUTE, confirmed_at=NOW + MINUTE)
    found = await store.console_session(b"new")
    assert found == ConsoleSession(b"new", "u_a", NOW, NOW + MINUTE, NOW + MINUTE)
    assert await store.end_console_sessions("u_a") == 1


@pytest.mark.anyio
async def test_failures_count_within_their_window_and_start_again_after(store: Store) -> None:
    keys = ["user:u_a", "addr:ff"]
    for n in range(3):
        await store.note_signin_failure(keys, at=NOW + n, window_start=NOW - 15 * MINUTE)
    assert await store.signin_failures(keys, since=NOW - 15 * MINUTE) == {
        "user:u_a": 3, "addr:ff": 3}  # fmt: skip
    later = NOW + 20 * MINUTE  # the window has passed: counting starts again
    await store.note_signin_failure(keys[:1], at=later, window_start=later - 15 * MINUTE)
    assert await store.signin_failures(keys, since=later - 15 * MINUTE) == {"user:u_a": 1}
    await store.clear_signin_failures(keys[:1])
    assert await store.signin_failures(keys, since=0) == {"addr:ff": 3}


@pytest.mark.anyio
async def test_a_webhooks_deliveries_newest_first_and_redelivered(store: Store) -> None:
    await store.add_webhook(Webhook("wh_1", "https://example.test/h", ("lead.created",),
                                    b"sealed", NOW))  # fmt: skip
    for n in range(3):
        await store.enqueue_delivery(OutboxItem(f"d{n}", "wh_1", "webhook.test", "", {},
                                                NOW + n, next_attempt_at=NOW + n))  # fmt: skip
    await store.mark_delivered("d1", NOW + 10, 1)
    assert [d.id for d in await store.deliveries_of("wh_1", limit=10)] == ["d2", "d1", "d0"]
    assert await store.redeliver("d1", NOW + 20)
    assert not await store.redeliver("missing", NOW + 20)
    due = await store.due_outbox(NOW + 20, limit=10)
    assert {d.id for d in due} == {"d0", "d1", "d2"}
    assert await store.count_events_since(0) == 0


@pytest.mark.anyio
async def test_recent_audit_rows_newest_first_filtered(store: Store) -> None:
    chain = Chain(b"k" * 32)
    for n, (actor, action) in enumerate([("user:a", "privacy.export"), ("user:b", "privacy.erase"),
                                         ("system", "retention.run"), ("user:a", "privacy.erase"),
                                         ("user:a", "privacy_x")]):  # fmt: skip
        await store.append_audit(AuditRow(0, NOW + n, actor, action, f"s{n % 2}", {}), chain)
    newest = await store.recent_audit(limit=2)
    assert [r.seq for r in newest] == [5, 4]
    erasures = await store.recent_audit(action_prefix="privacy.", actor="user:a", limit=10)
    assert [(r.seq, r.action) for r in erasures] == [(4, "privacy.erase"), (1, "privacy.export")]
    assert [r.seq for r in await store.recent_audit(subject="s0", limit=10)] == [5, 3, 1]
    assert await store.recent_audit(action_prefix="privacy.%", limit=10) == []  # no wildcards
    assert await store.count_audit() == 5
