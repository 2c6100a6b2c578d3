"""Static assets served from memory: the tag, with its ETag and a gzip copy made once.

The two copies are two representations, so each has its own strong ETag (``"…-gz"`` for
the gzip one); gzip is sent only to a client whose ``Accept-Encoding`` allows it with a
non-zero quality (``gzip;q=0`` means "not gzip")."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

TAG_CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'

    @classmethod
    def load(cls, name: str, media_type: str) -> Asset:
        body = (resources.files("tracker") / "static" / name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, 9, mtime=0), f'"{digest}"', media_type)

    def response(self, request: Request) -> Response:
        gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        etag = self.gzip_etag if gzipped else self.etag
        headers = {"ETag": etag, "Cache-Control": TAG_CACHE_CONTROL, "Vary": "Accept-Encoding"}
        tags = _etags(request.headers.get("if-none-match", ""))
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
        if gzipped:
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


@cache
def script(name: str) -> Asset:
    """A built script beside the tag (``s.js``, ``cmp.js``), loaded on first use."""
    return Asset.load(name, "application/javascript; charset=utf-8")


def accepts_gzip(header: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip: named (or ``*``) with a quality above 0.
    An explicit ``gzip`` entry wins over ``*``."""
    wildcard = False
    for item in header.lower().split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        allowed = _quality(params) > 0
        if coding != "*":
            return allowed
        wildcard = allowed
    return wildcard


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0  # a malformed weight is not a yes
    return 1.0


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")} if header else set()
