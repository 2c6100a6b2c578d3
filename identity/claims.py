"""What an identification may change about a lead that is already known.

* The site's backend (a valid signed token, evidence ``signed``) and the server API
  (``api``) vouch for the person: their non-empty values replace what the lead holds.
* A browser's unsigned claim (a form or ``ashiato('identify')``, evidence ``form``) may
  come from anyone who types someone else's email: it never rewrites what is known. It
  may fill traits that are still empty, and it is kept as that submission's own record
  (in the timeline and the export), so nothing it said is lost either.
"""

from __future__ import annotations

from typing import Any

from privacy.personal import CORE_FIELDS, Person

TRUSTED_EVIDENCE = frozenset({"signed", "api"})


def is_trusted(evidence: str) -> bool:
    return evidence in TRUSTED_EVIDENCE


def apply(current: Person, traits: dict[str, str], *, evidence: str) -> Person:
    """The lead's traits after this claim."""
    values = {k: v for k, v in traits.items() if v}
    return current.merged_with(values) if is_trusted(evidence) else current.filled_with(values)


def changed(before: Person, after: Person) -> list[str]:
    """The names of the traits that differ (what a claim filled or replaced)."""
    names = [c for c in CORE_FIELDS if getattr(before, c) != getattr(after, c)]
    return names + sorted(k for k, v in after.fields.items() if v and before.fields.get(k) != v)


def record(traits: dict[str, str], filled: list[str]) -> dict[str, Any]:
    """A submission record's (sealed) content: everything sent, and what it filled."""
    return {"traits": dict(traits), "filled": filled}
