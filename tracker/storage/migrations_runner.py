"""The numbered migrations of each database, shared by both backends.

``migrations/<folder>/NNNN_name.sql``: each file is applied once, in one transaction,
and recorded in ``schema_migrations``; a backend says how to run a file.
"""

from __future__ import annotations

from importlib import resources


def migrations(folder_name: str) -> list[tuple[int, str, str]]:
    """``migrations/<folder_name>/NNNN_name.sql`` as (number, name, sql), in order."""
    folder = resources.files("tracker.storage") / "migrations" / folder_name
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            number, _, name = item.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, item.read_text(encoding="utf-8")))
    return sorted(found)


def pending(folder_name: str, applied: set[int]) -> list[tuple[int, str, str]]:
    """The migrations of ``folder_name`` not in ``applied``, in order: every one, not only
    those above the highest applied (a database made between two branches' migrations
    would otherwise skip the lower-numbered one for good)."""
    return [m for m in migrations(folder_name) if m[0] not in applied]
