"""The domain error tree.

Every error ashiato raises on purpose derives from :class:`AshiatoError`. These errors
say what went wrong in the domain's terms and carry no HTTP status: the web layer maps
them to statuses (``tracker.http_errors``), the CLI to exit codes. Their messages may be
shown to whoever made the request, so they never hold personal data. A dropped bot or an
opted-out visitor is *not* an error: it is a counted drop reason (``tracker.drops``).
"""

from __future__ import annotations


class AshiatoError(Exception):
    """Base of every error ashiato raises on purpose."""


class ConfigError(AshiatoError):
    """A setting is missing or invalid; the process cannot start."""


class StorageError(AshiatoError):
    """The database refused an operation (locked, full, unreachable)."""


class Refused(AshiatoError):
    """What was asked cannot be done as asked: the caller's mistake, not a fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(Refused):
    """A value breaks a rule (malformed, out of range, contradictory options)."""


class NotFound(Refused):
    """Nothing is held under that id, or about that subject."""


class Conflict(Refused):
    """The request contradicts the current state (already exists, already undone)."""
