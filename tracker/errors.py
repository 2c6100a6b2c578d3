"""The error tree.

Every error ashiato raises on purpose derives from :class:`AshiatoError`. Errors that
reach an HTTP client carry their status, so the web layer turns them into
``{"error": message}`` without guessing. A dropped bot or an opted-out visitor is *not*
an error: it is a counted drop reason (see ``tracker.pipeline``).
"""

from __future__ import annotations


class AshiatoError(Exception):
    """Base of every error ashiato raises on purpose."""


class ConfigError(AshiatoError):
    """A setting is missing or invalid; the process cannot start."""


class StorageError(AshiatoError):
    """The database refused an operation (locked, full, unreachable)."""


class HTTPError(AshiatoError):
    """An error answered to an HTTP client; ``message`` must never hold personal data."""

    status = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(HTTPError):
    status = 400


class Unauthorized(HTTPError):
    status = 401


class Forbidden(HTTPError):
    status = 403


class NotFound(HTTPError):
    status = 404


class MethodNotAllowed(HTTPError):
    status = 405


class Conflict(HTTPError):
    status = 409


class PayloadTooLarge(HTTPError):
    status = 413


class UnsupportedMediaType(HTTPError):
    status = 415


class TooManyRequests(HTTPError):
    status = 429


class Overloaded(HTTPError):
    """The write queue is full or the database is unavailable: try again shortly."""

    status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
