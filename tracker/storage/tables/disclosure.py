"""The 外部送信 notice's entries: added, ended (never edited in place), read per site.

Every version of a site's notice can be told from its rows: an entry is in force from
``added_at`` until ``removed_at``. Changing the operator ends the current operator row
and adds the new one in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from tracker.storage.records import DisclosureRecipient
from tracker.storage.rows import text_array, to_json
from tracker.storage.script import Script, count, rows, run
from tracker.storage.tables import Tables

COLUMNS = (
    "id, site_id, kind, legal_name, service_name, items, purposes, opt_out_url,"
    " policy_version, added_at, removed_at"
)


def add_entry(entry: DisclosureRecipient) -> Script[None]:
    yield run(
        f"INSERT INTO disclosure_recipients ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        entry.id, entry.site_id, entry.kind, entry.legal_name, entry.service_name,
        to_json(list(entry.items)), to_json(list(entry.purposes)), entry.opt_out_url,
        entry.policy_version, entry.added_at, None,
    )  # fmt: skip


def end_entry(site_id: int, entry_id: str, at: int) -> Script[bool]:
    ended = yield count(
        "UPDATE disclosure_recipients SET removed_at = ?"
        " WHERE id = ? AND site_id = ? AND kind = 'recipient' AND removed_at IS NULL",
        at, entry_id, site_id,
    )  # fmt: skip
    return bool(ended)


def replace_operator(entry: DisclosureRecipient) -> Script[None]:
    yield run(
        "UPDATE disclosure_recipients SET removed_at = ?"
        " WHERE site_id = ? AND kind = 'operator' AND removed_at IS NULL",
        entry.added_at, entry.site_id,
    )  # fmt: skip
    yield from add_entry(entry)


def entries_of(site_id: int) -> Script[list[DisclosureRecipient]]:
    found = yield rows(
        f"SELECT {COLUMNS} FROM disclosure_recipients WHERE site_id = ? ORDER BY added_at, id",
        site_id,
    )
    return [entry_from_row(r) for r in found]


def entry_from_row(row: Sequence[Any]) -> DisclosureRecipient:
    (id_, site_id, kind, legal_name, service_name, items, purposes, opt_out_url,
     policy_version, added_at, removed_at) = row  # fmt: skip
    return DisclosureRecipient(id_, site_id, kind, legal_name, service_name, text_array(items),
                               text_array(purposes), opt_out_url, policy_version, added_at,
                               removed_at)  # fmt: skip


class DisclosureTables(Tables):
    """The 外部送信 notice's entries: mixed into each backend's store."""

    async def add_disclosure_entry(self, entry: DisclosureRecipient) -> None:
        """A recipient; an operator entry replaces the current one."""
        script = replace_operator if entry.kind == "operator" else add_entry
        await self.transact(partial(script, entry))

    async def end_disclosure_entry(self, site_id: int, entry_id: str, at: int) -> bool:
        """False when the site has no such recipient in force."""
        return await self.transact(partial(end_entry, site_id, entry_id, at))

    async def disclosure_entries(self, site_id: int) -> list[DisclosureRecipient]:
        """Every entry, in force or ended, oldest first."""
        return await self.read(entries_of(site_id))
