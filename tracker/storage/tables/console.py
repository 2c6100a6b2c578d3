"""The console's users, their sessions and the sign-in throttle.

A session row is found by the hash of its cookie's token (the token itself is never
stored); ending a user's sessions, changing their password or disabling them deletes the
rows, so a stolen cookie stops working at once. Failed sign-ins are counted per key
(account, unknown email's index, keyed hash of the address) within a window.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.storage.records import ConsoleSession, ConsoleUser
from tracker.storage.rows import site_ids, to_json
from tracker.storage.script import Script, count, row, rows, run, value
from tracker.storage.tables import Tables

USER_COLUMNS = (
    "id, email_index, email, role, password, totp, language, time_zone, created_at,"
    " disabled_at, sites"
)
SESSION_COLUMNS = "token_hash, user_id, created_at, seen_at, confirmed_at"


def _user(found: Sequence[Any]) -> ConsoleUser:
    id_, index, email, role, password, totp, language, zone, created, disabled, sites = found
    return ConsoleUser(id_, bytes(index), bytes(email), role, password,
                       None if totp is None else bytes(totp), language, zone, created,
                       disabled, site_ids(sites))  # fmt: skip


def add_user(user: ConsoleUser) -> Script[bool]:
    """False when a user with that email exists."""
    added = yield value(
        f"INSERT INTO console_users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING id",
        user.id, user.email_index, user.email, user.role, user.password, user.totp,
        user.language, user.time_zone, user.created_at, user.disabled_at,
        None if user.sites is None else to_json(list(user.sites)),
    )  # fmt: skip
    return added is not None


def user(user_id: str) -> Script[ConsoleUser | None]:
    found = yield row(f"SELECT {USER_COLUMNS} FROM console_users WHERE id = ?", user_id)
    return None if found is None else _user(found)


def user_by_index(index: bytes) -> Script[ConsoleUser | None]:
    found = yield row(f"SELECT {USER_COLUMNS} FROM console_users WHERE email_index = ?", index)
    return None if found is None else _user(found)


def users() -> Script[list[ConsoleUser]]:
    found = yield rows(f"SELECT {USER_COLUMNS} FROM console_users ORDER BY created_at, id")
    return [_user(r) for r in found]


def update_user(user: ConsoleUser, *, end_sessions: bool) -> Script[None]:
    """Write the user's changeable fields; a new password or a disabled account also
    ends every session of theirs."""
    yield run(
        "UPDATE console_users SET role = ?, password = ?, totp = ?, language = ?,"
        " time_zone = ?, disabled_at = ? WHERE id = ?",
        user.role, user.password, user.totp, user.language, user.time_zone,
        user.disabled_at, user.id,
    )  # fmt: skip
    if end_sessions:
        yield run("DELETE FROM console_sessions WHERE user_id = ?", user.id)


def start_session(session: ConsoleSession, replaces: bytes | None, stale: int) -> Script[None]:
    """A new session; the one it replaces (the cookie the browser came with) is gone,
    and so are sessions idle since ``stale``."""
    if replaces is not None:
        yield run("DELETE FROM console_sessions WHERE token_hash = ?", replaces)
    yield run("DELETE FROM console_sessions WHERE seen_at < ?", stale)
    yield run(
        f"INSERT INTO console_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        session.token_hash, session.user_id, session.created_at, session.seen_at,
        session.confirmed_at,
    )  # fmt: skip


def session(token_hash: bytes) -> Script[ConsoleSession | None]:
    found = yield row(
        f"SELECT {SESSION_COLUMNS} FROM console_sessions WHERE token_hash = ?", token_hash
    )
    if found is None:
        return None
    token, user_id, created, seen, confirmed = found
    return ConsoleSession(bytes(token), user_id, created, seen, confirmed)


def touch_session(token_hash: bytes, seen_at: int, confirmed_at: int | None) -> Script[None]:
    if confirmed_at is None:
        yield run("UPDATE console_sessions SET seen_at = ? WHERE token_hash = ?",
                  seen_at, token_hash)  # fmt: skip
    else:
        yield run("UPDATE console_sessions SET seen_at = ?, confirmed_at = ? WHERE token_hash = ?",
                  seen_at, confirmed_at, token_hash)  # fmt: skip


def end_session(token_hash: bytes) -> Script[None]:
    yield run("DELETE FROM console_sessions WHERE token_hash = ?", token_hash)


def end_sessions(user_id: str) -> Script[int]:
    ended = yield count("DELETE FROM console_sessions WHERE user_id = ?", user_id)
    return int(ended)


def signin_failures(keys: Sequence[str], since: int) -> Script[dict[str, int]]:
    found = yield rows(
        "SELECT key, failures FROM console_signin_failures WHERE key IN ? AND since >= ?",
        list(keys), since,
    )  # fmt: skip
    return {key: int(n) for key, n in found}


def note_failure(keys: Sequence[str], at: int, window_start: int) -> Script[None]:
    """One more failure for each key; a count older than the window starts again."""
    for key in keys:
        yield run(
            "INSERT INTO console_signin_failures (key, failures, since) VALUES (?, 1, ?)"
            " ON CONFLICT (key) DO UPDATE SET"
            " failures = CASE WHEN console_signin_failures.since < ? THEN 1"
            " ELSE console_signin_failures.failures + 1 END,"
            " since = CASE WHEN console_signin_failures.since < ? THEN ?"
            " ELSE console_signin_failures.since END",
            key, at, window_start, window_start, at,
        )  # fmt: skip


def clear_failures(keys: Sequence[str]) -> Script[None]:
    yield run("DELETE FROM console_signin_failures WHERE key IN ?", list(keys))


def count_events_since(at: int, sites: Sequence[int] | None) -> Script[int]:
    if sites is None:
        found = yield value("SELECT COUNT(*) FROM events WHERE at >= ?", at)
    else:
        found = yield value(
            "SELECT COUNT(*) FROM events WHERE at >= ? AND site_id IN ?", at, list(sites)
        )
    return int(found or 0)


class ConsoleTables(Tables):
    """Console users, sessions and sign-in failures: mixed into both stores."""

    async def add_console_user(self, user: ConsoleUser) -> bool:
        return await self.transact(partial(add_user, user))

    async def console_user(self, user_id: str) -> ConsoleUser | None:
        return await self.read(user(user_id))

    async def console_user_by_index(self, index: bytes) -> ConsoleUser | None:
        return await self.read(user_by_index(index))

    async def console_users(self) -> list[ConsoleUser]:
        return await self.read(users())

    async def update_console_user(self, user: ConsoleUser, *, end_sessions: bool) -> None:
        await self.transact(partial(update_user, user, end_sessions=end_sessions))

    async def start_console_session(
        self, session: ConsoleSession, *, replaces: bytes | None, stale: int
    ) -> None:
        await self.transact(partial(start_session, session, replaces, stale))

    async def console_session(self, token_hash: bytes) -> ConsoleSession | None:
        return await self.read(session(token_hash))

    async def touch_console_session(
        self, token_hash: bytes, *, seen_at: int, confirmed_at: int | None = None
    ) -> None:
        await self.transact(partial(touch_session, token_hash, seen_at, confirmed_at))

    async def end_console_session(self, token_hash: bytes) -> None:
        await self.transact(partial(end_session, token_hash))

    async def end_console_sessions(self, user_id: str) -> int:
        return await self.transact(partial(end_sessions, user_id))

    async def signin_failures(self, keys: Sequence[str], *, since: int) -> dict[str, int]:
        return await self.read(signin_failures(keys, since))

    async def note_signin_failure(self, keys: Sequence[str], *, at: int, window_start: int) -> None:
        await self.transact(partial(note_failure, keys, at, window_start))

    async def clear_signin_failures(self, keys: Sequence[str]) -> None:
        await self.transact(partial(clear_failures, keys))

    async def count_events_since(self, at: int, *, sites: Sequence[int] | None = None) -> int:
        """Events stored at or after ``at`` (the console's "events today")."""
        return await self.read(count_events_since(at, sites))
