"""The audit log: a chain of rows, each MAC'd over the previous row's MAC.

Appending reads the last row and writes the next in one transaction; on PostgreSQL the
AUDIT lock, held to commit, keeps the last MAC from changing underneath (SQLite's single
writer does that by itself). The MAC is ``privacy.audit``'s, passed in as ``chain``.
"""

from __future__ import annotations

from functools import partial

import orjson

from tracker.storage.records import AuditChain, AuditRow
from tracker.storage.rows import to_json
from tracker.storage.script import Lock, LockName, Script, row, rows, run, value
from tracker.storage.tables import Tables


def append_audit(entry: AuditRow, chain: AuditChain) -> Script[AuditRow]:
    yield Lock(LockName.AUDIT)
    last = yield row("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, previous = (last[0] + 1, bytes(last[1])) if last else (1, b"")
    entry = AuditRow(seq, entry.at, entry.actor, entry.action, entry.subject, entry.detail)
    mac = chain.mac(previous, entry)
    yield run(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, mac)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        seq, entry.at, entry.actor, entry.action, entry.subject, to_json(entry.detail), mac,
    )  # fmt: skip
    return AuditRow(seq, entry.at, entry.actor, entry.action, entry.subject, entry.detail, mac)


def audit_page(after: int, limit: int) -> Script[list[AuditRow]]:
    found = yield rows(
        "SELECT seq, at, actor, action, subject, detail, mac FROM audit_log"
        " WHERE seq > ? ORDER BY seq LIMIT ?",
        after, limit,
    )  # fmt: skip
    return [
        AuditRow(seq, at, actor, action, subject, orjson.loads(detail), bytes(mac))
        for seq, at, actor, action, subject, detail, mac in found
    ]


def recent_audit(
    action_prefix: str, actor: str, subject: str, limit: int
) -> Script[list[AuditRow]]:
    """The newest rows first, of an action family, an actor and a subject if named (a
    clause is left out rather than written as ``? = ''``, which PostgreSQL cannot type)."""
    clauses, args = [], []
    if action_prefix:
        clauses.append("substr(action, 1, ?) = ?")  # a prefix, without LIKE's wildcards
        args += [len(action_prefix), action_prefix]
    for column, wanted in (("actor", actor), ("subject", subject)):
        if wanted:
            clauses.append(f"{column} = ?")
            args.append(wanted)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    found = yield rows(
        "SELECT seq, at, actor, action, subject, detail, mac FROM audit_log"
        f"{where} ORDER BY seq DESC LIMIT ?",
        *args, limit,
    )  # fmt: skip
    return [
        AuditRow(seq, at, actor, action, subject, orjson.loads(detail), bytes(mac))
        for seq, at, actor, action, subject, detail, mac in found
    ]


def count_audit() -> Script[int]:
    found = yield value("SELECT COUNT(*) FROM audit_log")
    return int(found or 0)


class AuditTables(Tables):
    """The audit log: mixed into each backend's store."""

    async def append_audit(self, row: AuditRow, chain: AuditChain) -> AuditRow:
        return await self.transact(partial(append_audit, row, chain))

    async def audit_page(self, *, after: int, limit: int) -> list[AuditRow]:
        return await self.read(audit_page(after, limit))

    async def recent_audit(
        self, *, action_prefix: str = "", actor: str = "", subject: str = "", limit: int
    ) -> list[AuditRow]:
        return await self.read(recent_audit(action_prefix, actor, subject, limit))

    async def count_audit(self) -> int:
        return await self.read(count_audit())
