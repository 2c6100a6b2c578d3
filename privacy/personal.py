"""Personal data at rest: the only way a lead's traits or a full IP reach the store.

Each lead gets its own random data key (in the key store, wrapped by the master KEK);
every personal field is sealed under it with associated data naming its table, column
and row, so a ciphertext copied to another row or column does not open. The email is
also indexed by a keyed HMAC (blind index) so it can be looked up without being
readable. Destroying the lead's data key makes every copy of its ciphertexts noise.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from privacy.crypto.datakeys import DataKey, DataKeys, open_field, seal_field
from privacy.crypto.keyfile import KeyringSource
from privacy.crypto.primitives import (
    InvalidCiphertext,
    blind_index,
    match_index,
    match_index_key,
    normalise_email,
)
from tracker.storage.records import LeadRow, Submission

CORE_FIELDS = ("name", "company", "phone")
"""Traits with their own column; any other trait goes into the sealed ``fields`` JSON."""


@dataclass(frozen=True, slots=True)
class Person:
    """A lead's decrypted traits (in memory only)."""

    email: str
    name: str | None = None
    company: str | None = None
    phone: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.name,
            "company": self.company,
            "phone": self.phone,
            "fields": dict(self.fields),
        }

    def merged_with(self, traits: dict[str, str]) -> Person:
        """New non-empty values win; the email never changes (it is the lead's identity)."""
        extra = {k: v for k, v in traits.items() if k != "email" and k not in CORE_FIELDS}
        return Person(
            email=self.email,
            name=traits.get("name") or self.name,
            company=traits.get("company") or self.company,
            phone=traits.get("phone") or self.phone,
            fields={**self.fields, **extra},
        )

    def filled_with(self, traits: dict[str, str]) -> Person:
        """Only the traits still empty take the new non-empty values (an unsigned claim)."""
        extra = {
            k: v
            for k, v in traits.items()
            if v and k != "email" and k not in CORE_FIELDS and k not in self.fields
        }
        return Person(
            email=self.email,
            name=self.name or traits.get("name") or None,
            company=self.company or traits.get("company") or None,
            phone=self.phone or traits.get("phone") or None,
            fields={**self.fields, **extra},
        )


def link_ref(vid: str, at: int) -> str:
    """The row reference a link's sealed IP is bound to (its row id is not known yet)."""
    return f"{vid}:{at}"


def person_from_traits(traits: dict[str, str]) -> Person:
    return Person(email=traits["email"].strip()).merged_with(traits)


class PersonalData:
    def __init__(self, keys: DataKeys, source: KeyringSource) -> None:
        self.keys = keys
        self.source = source

    def email_index(self, email: str) -> bytes:
        return blind_index(self.source.keyring.index_key, email)

    def match_index(self, kind: str, value: str) -> bytes:
        """A 名寄せ match key's blind index (``identity.matchkeys`` normalises ``value``)."""
        return match_index(match_index_key(self.source.keyring.index_key), kind, value)

    async def new_lead(self, person: Person, *, now: int) -> LeadRow:
        """A fresh lead row, sealed under a fresh data key (created in the key store)."""
        dk = await self.keys.create()
        lead_id = "ld_" + secrets.token_hex(12)
        sealed = self._seal(dk, lead_id, person)
        return LeadRow(
            id=lead_id,
            email_index=self.email_index(person.email),
            key_id=dk.id,
            email=seal_field(dk, "leads", "email", lead_id, normalise_email(person.email)),
            name=sealed["name"],
            company=sealed["company"],
            phone=sealed["phone"],
            fields=sealed["fields"],
            first_touch=None,
            last_touch=None,
            merged_into=None,
            created_at=now,
            updated_at=now,
        )

    async def read(self, lead: LeadRow) -> Person:
        """Decrypt; raises InvalidCiphertext if the key is destroyed or a value tampered."""
        dk = await self.keys.get(lead.key_id)

        def opened(column: str, blob: bytes | None) -> str | None:
            return None if blob is None else open_field(dk, "leads", column, lead.id, blob)

        fields = opened("fields", lead.fields)
        return Person(
            email=open_field(dk, "leads", "email", lead.id, lead.email),
            name=opened("name", lead.name),
            company=opened("company", lead.company),
            phone=opened("phone", lead.phone),
            fields=orjson.loads(fields) if fields else {},
        )

    async def changed_columns(self, lead: LeadRow, person: Person) -> dict[str, bytes | None]:
        """The sealed columns that differ from what ``lead`` holds (to update)."""
        current = await self.read(lead)
        if current == person:
            return {}
        dk = await self.keys.get(lead.key_id)
        sealed = self._seal(dk, lead.id, person)
        return {
            c: sealed[c]
            for c in (*CORE_FIELDS, "fields")
            if getattr(current, c) != getattr(person, c)
        }

    async def seal_claim(self, lead: LeadRow, submission_id: str, claim: dict[str, Any]) -> bytes:
        """A submission record's content, under the lead's data key (it is personal data)."""
        dk = await self.keys.get(lead.key_id)
        return seal_field(dk, "submissions", "claim", submission_id, orjson.dumps(claim).decode())

    async def open_claim(self, lead: LeadRow, submission_id: str, blob: bytes) -> dict[str, Any]:
        dk = await self.keys.get(lead.key_id)
        claim: dict[str, Any] = orjson.loads(
            open_field(dk, "submissions", "claim", submission_id, blob)
        )
        return claim

    async def open_submissions(
        self, leads: Sequence[LeadRow], submissions: Sequence[Submission]
    ) -> list[tuple[Submission, dict[str, Any] | None]]:
        """Each record with its claim opened (None: its lead's key is gone or not given)."""
        by_id = {lead.id: lead for lead in leads}
        opened: list[tuple[Submission, dict[str, Any] | None]] = []
        for sub in submissions:
            lead, claim = by_id.get(sub.lead_id), None
            if lead is not None:
                try:
                    claim = await self.open_claim(lead, sub.id, sub.claim)
                except InvalidCiphertext:
                    claim = None
            opened.append((sub, claim))
        return opened

    async def seal_ip(self, lead: LeadRow, link_ref: str, ip: str | None) -> bytes | None:
        if not ip:
            return None
        dk = await self.keys.get(lead.key_id)
        return seal_field(dk, "links", "ip", link_ref, ip)

    async def open_ip(self, lead: LeadRow, link_ref: str, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        dk = await self.keys.get(lead.key_id)
        return open_field(dk, "links", "ip", link_ref, blob)

    async def destroy(self, lead: LeadRow) -> bool:
        """Crypto-shred the lead: every copy of its ciphertexts becomes unreadable."""
        return await self.keys.destroy(lead.key_id)

    @staticmethod
    def _seal(dk: DataKey, lead_id: str, person: Person) -> dict[str, bytes | None]:
        def sealed(column: str, value: str | None) -> bytes | None:
            return None if value is None else seal_field(dk, "leads", column, lead_id, value)

        fields = orjson.dumps(person.fields).decode() if person.fields else None
        return {
            "name": sealed("name", person.name),
            "company": sealed("company", person.company),
            "phone": sealed("phone", person.phone),
            "fields": sealed("fields", fields),
        }
