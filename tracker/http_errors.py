"""HTTP answers for errors: the web layer's own errors, and the domain's mapped to a status.

Errors here exist only in HTTP (a malformed or oversized body, a missing API key, a
full write queue) and are raised only by the web layer (``tracker``, outside
``tracker.storage``). Domain errors (``tracker.errors``) carry no status: ``answer``
gives it to them, so every client gets ``{"error": message}`` with the right one.
"""

from __future__ import annotations

from tracker.errors import AshiatoError, Conflict, Invalid, NotFound, Refused


class HTTPError(AshiatoError):
    """An error answered to an HTTP client; ``message`` must never hold personal data."""

    status = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(HTTPError):
    """The request itself is malformed (body, JSON, query parameters)."""

    status = 400


class Unauthorized(HTTPError):
    status = 401


class Forbidden(HTTPError):
    status = 403


class MethodNotAllowed(HTTPError):
    status = 405


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


REFUSAL_STATUS: dict[type[Refused], int] = {Invalid: 400, NotFound: 404, Conflict: 409}
"""The status of each kind of refusal (a subclass answers as its base)."""

ANSWERED = (HTTPError, Refused)
"""What ``answer`` turns into an HTTP answer (a StorageError is a 503 of its own)."""


def answer(exc: HTTPError | Refused) -> tuple[int, str, dict[str, str]]:
    """Status, message and headers of the answer to ``exc``."""
    if isinstance(exc, HTTPError):
        return exc.status, exc.message, exc.headers
    status = next((s for kind, s in REFUSAL_STATUS.items() if isinstance(exc, kind)), 400)
    return status, exc.message, {}  # a refusal not listed is still the caller's mistake
