"""ashiato's data in SQLite: the Store protocol over one ``SQLiteDatabase``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from tracker.errors import Conflict
from tracker.storage.records import (
    DEFAULT_SITE_SETTINGS,
    ConsentMode,
    ConsentReceipt,
    ConsentRules,
    ConsentState,
    Event,
    Forget,
    Site,
    SiteSettings,
    WriteItem,
    WriteResult,
)
from tracker.storage.rows import (
    EVENT_COLUMNS,
    INSERT_EVENT,
    SITE_COLUMNS,
    event_from_row,
    event_row,
    site_from_row,
    site_settings_json,
    to_json,
)
from tracker.storage.sqlite.database import SQLiteDatabase
from tracker.storage.tables.access import AccessTables
from tracker.storage.tables.audit import AuditTables
from tracker.storage.tables.identity import IdentityTables
from tracker.storage.tables.legal import LegalTables
from tracker.storage.tables.merges import MergeTables
from tracker.storage.tables.retention import RetentionTables
from tracker.storage.tables.traits import TraitTables


def _write_batch(
    items: Sequence[WriteItem], rules: ConsentRules, db: sqlite3.Connection
) -> WriteResult:
    """Receipts, forgets and events in arrival order, in one transaction.

    Each event is admitted against its visitor's consent state as it stands at that
    point of the batch (a grant earlier in the same batch counts), read once per batch.
    """
    states = _consent_states(db, {item.vid for item in items})
    result, rows = WriteResult(), []
    for item in items:
        if isinstance(item, Event):
            if rules.admit(item, states.get((item.site_id, item.vid))):
                rows.append(event_row(item))
            else:
                result.refused += 1
        elif isinstance(item, ConsentReceipt):
            result.receipts += _record_receipt(db, item, rules, states)
        else:
            db.executemany(INSERT_EVENT, rows)  # earlier events of this batch go too
            result.stored += len(rows)
            rows = []
            result.forgotten += _forget(db, item, rules, states)
    db.executemany(INSERT_EVENT, rows)
    result.stored += len(rows)
    return result


_STATE_COLUMNS = "site_id, vid, analytics, marketing, gpc, receipt_id, at"


def _consent_states(db: sqlite3.Connection, vids: set[str]) -> dict[tuple[int, str], ConsentState]:
    states: dict[tuple[int, str], ConsentState] = {}
    ordered = sorted(vids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT {_STATE_COLUMNS} FROM consent_state WHERE vid IN ({marks})"
        for site_id, vid, analytics, marketing, gpc, receipt_id, at in db.execute(query, chunk):
            states[site_id, vid] = ConsentState(bool(analytics), bool(marketing), bool(gpc),
                                                receipt_id, at)  # fmt: skip
    return states


def _record_receipt(
    db: sqlite3.Connection,
    receipt: ConsentReceipt,
    rules: ConsentRules,
    states: dict[tuple[int, str], ConsentState],
) -> int:
    key = (receipt.site_id, receipt.vid)
    state = rules.apply(receipt, states.get(key))
    if state is None:
        return 0
    inserted = db.execute(
        "INSERT OR IGNORE INTO consent_receipts (id, site_id, vid, analytics, marketing,"
        " policy_version, source, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (receipt.id, receipt.site_id, receipt.vid, receipt.analytics, receipt.marketing,
         receipt.policy_version, receipt.source, receipt.at),
    ).rowcount  # fmt: skip
    if not inserted:
        return 0  # a replayed consent id: the first one stands
    db.execute(
        f"INSERT OR REPLACE INTO consent_state ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*key, state.analytics, state.marketing, state.gpc, state.receipt_id, state.at),
    )
    states[key] = state
    return 1


def _forget(
    db: sqlite3.Connection,
    forget: Forget,
    rules: ConsentRules,
    states: dict[tuple[int, str], ConsentState],
) -> int:
    """Erase the visitor's anonymous events on the site that sent the forget: those no
    link gives to a lead (a known person's data goes only through a privacy request, and
    knowing a visitor id must not be enough to wipe it). Links stay; the receipts stay
    (proof), plus this one."""
    erased = db.execute(
        "DELETE FROM events WHERE vid = ? AND site_id = ? AND NOT EXISTS (SELECT 1 FROM"
        " links k WHERE k.vid = events.vid AND events.at >= k.valid_from"
        " AND events.at < COALESCE(k.ended_at, ?))",
        (forget.vid, forget.receipt.site_id, 2**62),
    ).rowcount
    _record_receipt(db, forget.receipt, rules, states)
    return int(erased)


class SQLiteStore(
    IdentityTables, TraitTables, MergeTables, AccessTables, LegalTables, RetentionTables,
    AuditTables, SQLiteDatabase,
):  # fmt: skip
    """ashiato's data: sites, events (and, in further modules, everything else)."""

    migrations_folder = "sqlite"

    # -- sites ---------------------------------------------------------------------

    async def add_site(
        self,
        *,
        key: str,
        name: str,
        origins: Sequence[str],
        consent_mode: ConsentMode,
        now: int,
        settings: SiteSettings = DEFAULT_SITE_SETTINGS,
        secret: bytes | None = None,
    ) -> Site:
        def insert(db: sqlite3.Connection) -> int | None:
            return db.execute(
                "INSERT INTO sites (key, name, origins, consent_mode, created_at, settings,"
                " secret) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, name, to_json(list(origins)), consent_mode, now,
                 site_settings_json(settings), secret),
            ).lastrowid  # fmt: skip

        try:
            site_id = await self._write(insert)
        except sqlite3.IntegrityError:
            raise Conflict(f"a site named {name!r} already exists") from None
        assert site_id is not None
        return Site(site_id, key, name, tuple(origins), consent_mode, now, settings, secret)

    async def update_site(self, site: Site) -> None:
        await self._write(lambda db: db.execute(
            "UPDATE sites SET origins = ?, consent_mode = ?, settings = ?, secret = ?"
            " WHERE id = ?",
            (to_json(list(site.origins)), site.consent_mode, site_settings_json(site.settings),
             site.secret, site.id),
        ))  # fmt: skip

    async def list_sites(self) -> list[Site]:
        rows = await self._read(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY id")
        return [site_from_row(r) for r in rows]

    async def get_system_key(self, name: str) -> str | None:
        rows = await self._read("SELECT key_id FROM system_keys WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def system_key(self, name: str, candidate: str) -> str:
        """The data key id sealing system secrets; ``candidate`` if none was set yet."""

        def get_or_set(db: sqlite3.Connection) -> str:
            db.execute("INSERT OR IGNORE INTO system_keys VALUES (?, ?)", (name, candidate))
            row = db.execute("SELECT key_id FROM system_keys WHERE name = ?", (name,)).fetchone()
            return str(row[0])

        return await self._write(get_or_set)

    # -- events --------------------------------------------------------------------

    async def write_batch(self, items: Sequence[WriteItem], rules: ConsentRules) -> WriteResult:
        return await self._write(partial(_write_batch, items, rules))

    async def consent_state(self, site_id: int, vid: str) -> ConsentState | None:
        rows = await self._read(
            f"SELECT {_STATE_COLUMNS} FROM consent_state WHERE vid = ? AND site_id = ?",
            (vid, site_id),
        )
        if not rows:
            return None
        _, _, analytics, marketing, gpc, receipt_id, at = rows[0]
        return ConsentState(bool(analytics), bool(marketing), bool(gpc), receipt_id, at)

    async def visitor_events(self, vid: str, *, limit: int = 1000) -> list[Event]:
        rows = await self._read(
            f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid = ? ORDER BY at, id LIMIT ?",
            (vid, limit),
        )
        return [event_from_row(r) for r in rows]

    async def events_page(self, *, after_id: int = 0, limit: int = 1000) -> list[Event]:
        rows = await self._read(
            f"SELECT id, {EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [event_from_row(r) for r in rows]

    async def count_events(self) -> int:
        rows = await self._read("SELECT COUNT(*) FROM events")
        return int(rows[0][0])
