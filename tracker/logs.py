"""Structured logs: one JSON object per line, on stderr.

Log calls pass what they need as ``extra`` fields; messages are fixed strings or carry
counts and causes, never request bodies, query strings or personal data.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import sys
import time
from typing import Any

import orjson

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with ANSI colours
}


REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ashiato_request_id", default=None
)
_PREFIX = f"{os.getpid():x}"
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique per process run and cheap (no randomness on the hot path): pid-sequence."""
    request_id = f"{_PREFIX}-{next(_COUNTER):x}"
    REQUEST_ID.set(request_id)
    return request_id


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(_driver_cause_only)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log prints raw query strings (pixel URLs); ours does not.
    logging.getLogger("uvicorn.access").disabled = True


def _driver_cause_only(record: logging.LogRecord) -> bool:
    """asyncpg's pool logs a traceback each time it fails to reconnect while the
    database is away; the cause is the news (we answer 503 meanwhile), not the stack."""
    if record.name.startswith("asyncpg") and record.exc_info and record.exc_info[1]:
        record.cause = record.exc_info[1].__class__.__name__
        record.exc_info = None
        record.exc_text = None
    return True


def uvicorn_log_config() -> dict[str, Any]:
    """Keep uvicorn from installing its own plain-text handlers over ours."""
    return {"version": 1, "disable_existing_loggers": False}
