"""Static assets served from memory: the tag, with its ETag and a gzip copy made once."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
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

    @classmethod
    def load(cls, name: str, media_type: str) -> Asset:
        body = (resources.files("tracker") / "static" / name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, 9, mtime=0), f'"{digest}"', media_type)

    def response(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": TAG_CACHE_CONTROL, "Vary": "Accept-Encoding"}
        tags = _etags(request.headers.get("if-none-match", ""))
        if self.etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")} if header else set()
