"""Events and consent: the collector's group-commit batch and what reads it back.

A batch is one transaction: receipts, forgets and events in arrival order. Its events
go in with one ``Insert`` (``executemany`` in SQLite; COPY in PostgreSQL, one round
trip routed to the monthly partitions by the server), after their consent was checked
in the same transaction. On PostgreSQL the visitors whose consent the batch changes are
locked first (``lock_visitors``), so two collectors recording consent for one visitor
at once apply one after the other, as SQLite's single writer would.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.storage.records import (
    ConsentReceipt,
    ConsentRules,
    ConsentState,
    Event,
    Forget,
    WriteItem,
    WriteResult,
)
from tracker.storage.rows import (
    EVENT_COLUMN_NAMES,
    EVENT_COLUMNS,
    RECEIPT_COLUMNS,
    event_from_row,
    event_row,
    to_json,
)
from tracker.storage.script import Insert, Script, count, lock_visitors, row, rows, run, value
from tracker.storage.tables import Tables, rollups
from tracker.storage.tables.serverside import claim_messages, first_claims

STATE_COLUMNS = "site_id, vid, analytics, marketing, gpc, receipt_id, at"
States = dict[tuple[int, str], ConsentState]
VISITORS_PER_QUERY = 900
"""Under SQLite's oldest limit of 999 parameters, above a full batch's visitors."""
FOREVER = 2**62


def write_batch(items: Sequence[WriteItem], rules: ConsentRules) -> Script[WriteResult]:
    """Each event is admitted against its visitor's consent state as it stands at that
    point of the batch (a grant earlier in the same batch counts), read once per batch
    after the visitors whose consent the batch changes are locked. The roll-ups count
    the page views later (``rollups.plan``); a forget subtracts what it deletes."""
    yield from lock_visitors({item.vid for item in items if not isinstance(item, Event)})
    if any(isinstance(item, Forget) for item in items):
        yield from rollups.coverage()  # taken before any insert (see rollups.horizon)
    states = yield from consent_states({item.vid for item in items})
    result, admitted = WriteResult(), list[Event]()
    fresh = yield from unseen_messages(items)
    for item in items:
        if isinstance(item, Event):
            if item.message_id is not None and id(item) not in fresh:
                result.duplicates += 1
            elif rules.admit(item, states.get((item.site_id, item.vid))):
                admitted.append(item)
            else:
                result.refused += 1
        elif isinstance(item, ConsentReceipt):
            result.receipts += yield from record_receipt(item, rules, states)
        else:
            result.stored += yield from insert_events(admitted)  # earlier ones go first
            admitted = []
            result.forgotten += yield from forget(item, rules, states)
    result.stored += yield from insert_events(admitted)
    return result


def unseen_messages(items: Sequence[WriteItem]) -> Script[set[int]]:
    """The ``id()`` of each event with a message id seen for the first time (the first
    of several in this batch); events without one are not listed."""
    named = [i for i in items if isinstance(i, Event) and i.message_id is not None]
    if not named:
        return set()
    claimed = yield from claim_messages(named)
    return {id(e) for e, keep in zip(named, first_claims(named, claimed), strict=True) if keep}


def insert_events(admitted: list[Event]) -> Script[int]:
    if admitted:
        yield Insert("events", EVENT_COLUMN_NAMES, [event_row(e) for e in admitted])
    return len(admitted)


def consent_states(vids: set[str]) -> Script[States]:
    states: States = {}
    ordered = sorted(vids)
    for start in range(0, len(ordered), VISITORS_PER_QUERY):
        chunk = ordered[start : start + VISITORS_PER_QUERY]
        found = yield rows(f"SELECT {STATE_COLUMNS} FROM consent_state WHERE vid IN ?", chunk)
        for r in found:
            states[r[0], r[1]] = state_from_row(r)
    return states


def state_from_row(r: Sequence[Any]) -> ConsentState:
    _, _, analytics, marketing, gpc, receipt_id, at = r
    return ConsentState(bool(analytics), bool(marketing), bool(gpc), receipt_id, at)


def record_receipt(receipt: ConsentReceipt, rules: ConsentRules, states: States) -> Script[int]:
    key = (receipt.site_id, receipt.vid)
    state = rules.apply(receipt, states.get(key))
    if state is None:
        return 0
    inserted = yield count(
        f"INSERT INTO consent_receipts ({RECEIPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        receipt.id, receipt.site_id, receipt.vid, receipt.analytics, receipt.marketing,
        receipt.policy_version, receipt.source, receipt.at, to_json(receipt.signal),
    )  # fmt: skip
    if not inserted:
        return 0  # a replayed consent id: the first one stands
    yield run(
        f"INSERT INTO consent_state ({STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (vid, site_id) DO UPDATE SET analytics = excluded.analytics,"
        " marketing = excluded.marketing, gpc = excluded.gpc,"
        " receipt_id = excluded.receipt_id, at = excluded.at",
        *key, state.analytics, state.marketing, state.gpc, state.receipt_id, state.at,
    )  # fmt: skip
    states[key] = state
    return 1


def forget(item: Forget, rules: ConsentRules, states: States) -> Script[int]:
    """Erase the visitor's anonymous events on the site that sent the forget: those no
    link gives to a lead (a known person's data goes only through a privacy request, and
    knowing a visitor id must not be enough to wipe it). Links stay; the receipts stay
    (proof), plus this one."""
    before = yield from rollups.snapshot([item.vid])
    erased = yield count(
        "DELETE FROM events WHERE vid = ? AND site_id = ? AND NOT EXISTS (SELECT 1 FROM"
        " links k WHERE k.vid = events.vid AND events.at >= k.valid_from"
        " AND events.at < COALESCE(k.ended_at, ?))",
        item.vid, item.receipt.site_id, FOREVER,
    )  # fmt: skip
    yield from rollups.settle([item.vid], before)
    yield from record_receipt(item.receipt, rules, states)
    return int(erased)


def consent_state(site_id: int, vid: str) -> Script[ConsentState | None]:
    found = yield row(
        f"SELECT {STATE_COLUMNS} FROM consent_state WHERE vid = ? AND site_id = ?", vid, site_id
    )
    return None if found is None else state_from_row(found)


def events_where(condition: str, order: str, *args: Any) -> Script[list[Event]]:
    found = yield rows(
        f"SELECT id, {EVENT_COLUMNS} FROM events WHERE {condition} ORDER BY {order} LIMIT ?",
        *args,
    )
    return [event_from_row(r) for r in found]


def count_events() -> Script[int]:
    return int((yield value("SELECT COUNT(*) FROM events")))


class EventTables(Tables):
    """Events and consent: mixed into both stores."""

    async def write_batch(self, items: Sequence[WriteItem], rules: ConsentRules) -> WriteResult:
        return await self.transact(partial(write_batch, items, rules))

    async def consent_state(self, site_id: int, vid: str) -> ConsentState | None:
        return await self.read(consent_state(site_id, vid))

    async def visitor_events(
        self, vid: str, *, limit: int = 1000, sites: Sequence[int] | None = None
    ) -> list[Event]:
        if sites is None:
            return await self.read(events_where("vid = ?", "at, id", vid, limit))
        return await self.read(
            events_where("vid = ? AND site_id IN ?", "at, id", vid, list(sites), limit)
        )

    async def events_page(self, *, after_id: int = 0, limit: int = 1000) -> list[Event]:
        return await self.read(events_where("id > ?", "id", after_id, limit))

    async def count_events(self) -> int:
        return await self.read(count_events())
