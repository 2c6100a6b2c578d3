"""ashiato's data in PostgreSQL: the Store protocol over one ``PostgresDatabase``.

Events of a batch go in with COPY (one round trip for the whole batch, routed to their
monthly partitions by the server), after their consent was checked in the same
transaction. Receipts lock their visitors first (``lock_visitors``), so two collectors
recording consent for one visitor at once apply one after the other, as SQLite's single
writer would.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import asyncpg

from tracker.errors import Conflict
from tracker.storage.postgres import partitions
from tracker.storage.postgres.database import PostgresDatabase, guard, lock_visitors, now_ms
from tracker.storage.postgres.dialect import count_of
from tracker.storage.postgres.rows import (
    EVENT_COLUMN_NAMES,
    EVENT_COLUMNS,
    RECEIPT_COLUMNS,
    SITE_COLUMNS,
    event_from_row,
    event_row,
    site_from_row,
    site_settings_json,
    to_json,
)
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
from tracker.storage.tables.access import AccessTables
from tracker.storage.tables.audit import AuditTables
from tracker.storage.tables.identity import IdentityTables
from tracker.storage.tables.legal import LegalTables
from tracker.storage.tables.merges import MergeTables
from tracker.storage.tables.retention import RetentionTables
from tracker.storage.tables.traits import TraitTables

_STATE_COLUMNS = "site_id, vid, analytics, marketing, gpc, receipt_id, at"
States = dict[tuple[int, str], ConsentState]


async def _write_batch(
    items: Sequence[WriteItem], rules: ConsentRules, db: asyncpg.Connection
) -> WriteResult:
    """Receipts, forgets and events in arrival order, in one transaction.

    Each event is admitted against its visitor's consent state as it stands at that
    point of the batch (a grant earlier in the same batch counts), read once per batch
    after the visitors whose consent the batch changes are locked."""
    await lock_visitors(db, {item.vid for item in items if not isinstance(item, Event)})
    states = await _consent_states(db, {item.vid for item in items})
    result, rows = WriteResult(), list[tuple[object, ...]]()
    for item in items:
        if isinstance(item, Event):
            if rules.admit(item, states.get((item.site_id, item.vid))):
                rows.append(event_row(item))
            else:
                result.refused += 1
        elif isinstance(item, ConsentReceipt):
            result.receipts += await _record_receipt(db, item, rules, states)
        else:
            result.stored += await _copy_events(db, rows)  # earlier events of this batch go too
            rows = []
            result.forgotten += await _forget(db, item, rules, states)
    result.stored += await _copy_events(db, rows)
    return result


async def _copy_events(db: asyncpg.Connection, rows: list[tuple[object, ...]]) -> int:
    if rows:
        await db.copy_records_to_table("events", records=rows, columns=EVENT_COLUMN_NAMES)
    return len(rows)


async def _consent_states(db: asyncpg.Connection, vids: set[str]) -> States:
    rows = await db.fetch(
        f"SELECT {_STATE_COLUMNS} FROM consent_state WHERE vid = ANY($1::text[])", list(vids)
    )
    return {(r[0], r[1]): ConsentState(*tuple(r)[2:]) for r in rows}


async def _record_receipt(
    db: asyncpg.Connection, receipt: ConsentReceipt, rules: ConsentRules, states: States
) -> int:
    key = (receipt.site_id, receipt.vid)
    state = rules.apply(receipt, states.get(key))
    if state is None:
        return 0
    inserted = count_of(await db.execute(
        f"INSERT INTO consent_receipts ({RECEIPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6,"
        " $7, $8) ON CONFLICT (id) DO NOTHING",
        receipt.id, receipt.site_id, receipt.vid, receipt.analytics, receipt.marketing,
        receipt.policy_version, receipt.source, receipt.at,
    ))  # fmt: skip
    if not inserted:
        return 0  # a replayed consent id: the first one stands
    await db.execute(
        f"INSERT INTO consent_state ({_STATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (vid, site_id) DO UPDATE SET analytics = excluded.analytics,"
        " marketing = excluded.marketing, gpc = excluded.gpc,"
        " receipt_id = excluded.receipt_id, at = excluded.at",
        *key, state.analytics, state.marketing, state.gpc, state.receipt_id, state.at,
    )  # fmt: skip
    states[key] = state
    return 1


async def _forget(
    db: asyncpg.Connection, forget: Forget, rules: ConsentRules, states: States
) -> int:
    """Erase the visitor's anonymous events on the site that sent the forget: those no
    link gives to a lead (a known person's data goes only through a privacy request, and
    knowing a visitor id must not be enough to wipe it). Links stay; the receipts stay
    (proof), plus this one."""
    erased = count_of(await db.execute(
        "DELETE FROM events WHERE vid = $1 AND site_id = $2 AND NOT EXISTS (SELECT 1 FROM"
        " links k WHERE k.vid = events.vid AND events.at >= k.valid_from"
        " AND events.at < COALESCE(k.ended_at, $3))",
        forget.vid, forget.receipt.site_id, 2**62,
    ))  # fmt: skip
    await _record_receipt(db, forget.receipt, rules, states)
    return erased


class PostgresStore(
    IdentityTables, TraitTables, MergeTables, AccessTables, LegalTables, RetentionTables,
    AuditTables, PostgresDatabase,
):  # fmt: skip
    """ashiato's data in one PostgreSQL database, shared by any number of collectors."""

    migrations_folder = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._months = partitions.Months()

    async def _after_migrate(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await partitions.create(conn, partitions.ahead(now_ms()))
        self._months.known = await partitions.existing(conn)

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
        try:
            site_id = await self._read_value(
                "INSERT INTO sites (key, name, origins, consent_mode, created_at, settings,"
                " secret) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                key, name, to_json(list(origins)), consent_mode, now,
                site_settings_json(settings), secret,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a site named {name!r} already exists") from None
        return Site(int(site_id), key, name, tuple(origins), consent_mode, now, settings, secret)

    async def update_site(self, site: Site) -> None:
        await self._execute(
            "UPDATE sites SET origins = $1, consent_mode = $2, settings = $3, secret = $4"
            " WHERE id = $5",
            to_json(list(site.origins)), site.consent_mode, site_settings_json(site.settings),
            site.secret, site.id,
        )  # fmt: skip

    async def list_sites(self) -> list[Site]:
        rows = await self._read(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY id")
        return [site_from_row(r) for r in rows]

    async def get_system_key(self, name: str) -> str | None:
        value = await self._read_value("SELECT key_id FROM system_keys WHERE name = $1", name)
        return None if value is None else str(value)

    async def system_key(self, name: str, candidate: str) -> str:
        """The data key id sealing system secrets; ``candidate`` if none was set yet."""

        async def get_or_set(db: asyncpg.Connection) -> str:
            await db.execute("INSERT INTO system_keys VALUES ($1, $2) ON CONFLICT DO NOTHING",
                             name, candidate)  # fmt: skip
            return str(await db.fetchval("SELECT key_id FROM system_keys WHERE name = $1", name))

        return await self._transaction(get_or_set)

    # -- events --------------------------------------------------------------------

    async def write_batch(self, items: Sequence[WriteItem], rules: ConsentRules) -> WriteResult:
        await self._make_partitions([item.at for item in items if isinstance(item, Event)])
        return await self._transaction(partial(_write_batch, items, rules))

    async def _make_partitions(self, ats: list[int]) -> None:
        """Make the partitions a batch needs and lacks (rare: a month turned over)."""
        if not ats:
            return
        if self._months.known is None:
            self._months.known = await self._transaction(partitions.existing)
        if missing := self._months.missing(ats):
            await self._transaction(partial(_create_partitions, missing))
            self._months.known |= missing

    async def drop_expired_partitions(self, before: int) -> int:
        """Drop whole monthly partitions of events that end at or before ``before``."""

        async def drop() -> int:
            async with (await self.pool()).acquire() as conn:
                dropped, months = await partitions.drop_expired(conn, before)
            if self._months.known is not None:
                self._months.known -= set(months)
            return dropped

        return await guard(drop())

    async def consent_state(self, site_id: int, vid: str) -> ConsentState | None:
        rows = await self._read(
            f"SELECT {_STATE_COLUMNS} FROM consent_state WHERE vid = $1 AND site_id = $2",
            vid, site_id,
        )  # fmt: skip
        return ConsentState(*tuple(rows[0])[2:]) if rows else None

    async def visitor_events(self, vid: str, *, limit: int = 1000) -> list[Event]:
        rows = await self._read(
            f"SELECT id, {EVENT_COLUMNS} FROM events WHERE vid = $1 ORDER BY at, id LIMIT $2",
            vid, limit,
        )  # fmt: skip
        return [event_from_row(r) for r in rows]

    async def events_page(self, *, after_id: int = 0, limit: int = 1000) -> list[Event]:
        rows = await self._read(
            f"SELECT id, {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2",
            after_id, limit,
        )  # fmt: skip
        return [event_from_row(r) for r in rows]

    async def count_events(self) -> int:
        return int(await self._read_value("SELECT COUNT(*) FROM events"))


async def _create_partitions(months: set[int], db: asyncpg.Connection) -> None:
    await partitions.create(db, months)
