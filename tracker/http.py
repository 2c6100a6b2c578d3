"""uvicorn's httptools protocol, with the limits httptools itself does not have.

httptools (llhttp) accepts a request head of any size and uvicorn waits forever for a
client that stops half-way, so a public endpoint needs:

* a bound on the request head: at most ``MAX_HEAD_BYTES`` of request line and headers
  and ``MAX_HEADERS`` headers, else 431 and the connection is closed — memory per
  connection stays bounded whatever a client streams;
* deadlines: the head must arrive within ``HEAD_TIMEOUT`` seconds of the connection (or
  of the previous response), the body within ``BODY_TIMEOUT`` of the head, else the
  connection is closed — a slowloris cannot hold connections (file descriptors) open.
  A deadline is set only when a read ends with a request incomplete: a beacon arrives
  whole in one read, so the hot path pays for no timer;
* an idle deadline between requests: uvicorn's keep-alive timer (``timeout_keep_alive``)
  is cancelled when a next request *begins*, not by any byte — llhttp skips bare CRLFs
  between requests, so a client dripping ``\r\n`` would otherwise hold an idle
  connection forever.

It also answers the beacon itself: a ``POST /collect`` with a declared length within
the limit, when no other request of the connection is in flight, is read whole and
handed to the app's ``collect_raw`` (``tracker.app.Collector``), and the answer is
written as uvicorn would write it (its default headers, ``connection: close`` when the
connection ends), without the ASGI scope, cycle, receive and send (measured: about a tenth
of the event loop's CPU per beacon). Any other request, including one pipelined
behind a beacon (it waits, as uvicorn queues pipelined requests), goes through ASGI.

Served by passing this class as ``uvicorn.run(http=...)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tracker.ingest import ClientInfo

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0

_431_BODY = b'{"error":"request headers are too large"}'
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_431_BODY), _431_BODY)
)


class HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _head_bytes = 0
    _deadline: asyncio.TimerHandle | None = None
    _phase: float | None = None  # the timeout of the part being read (head, body), if any
    _armed: float | None = None  # the phase the deadline was set for

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm(HEAD_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own method, with one more outcome: a head over the limits gets 431.
        # Unlike uvicorn, bytes alone do not cancel the idle (keep-alive) timer: only a
        # request that begins does (on_message_begin).
        try:
            self.parser.feed_data(data)
            if self._phase is not None and self._armed != self._phase:
                self._arm(self._phase)  # a request left half-read: its deadline starts now
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self.transport.write(_431)
                self.transport.close()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            self.send_400_response("Upgrades are not supported.")

    def on_message_begin(self) -> None:
        self._unset_keepalive_if_required()  # from here the head deadline bounds the wait
        super().on_message_begin()
        self._head_bytes = 0
        self._phase = HEAD_TIMEOUT

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        if len(self.headers) >= MAX_HEADERS:
            raise HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._phase = BODY_TIMEOUT
        if self._takes_raw():
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._raw is not None:
            self._raw[1].extend(body)  # at most the declared length: llhttp stops there
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = None
        self._disarm()
        if self._raw is not None:
            client, body = self._raw
            self._raw = None
            in_flight = self.cycle
            assert isinstance(in_flight, _RawBeacon)
            in_flight.keep_alive = (
                self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            )
            task = self.loop.create_task(self._answer_raw(in_flight, client, bytes(body)))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            return
        super().on_message_complete()

    _raw: tuple[ClientInfo, bytearray] | None = None  # a beacon being read for collect_raw

    def _takes_raw(self) -> bool:
        """A ``POST /collect`` the app may answer raw, with nothing else in flight: if so,
        its body is read for ``collect_raw``."""
        if self.url != b"/collect" or self.parser.get_method() != b"POST":
            return False
        takes = getattr(self.app, "takes_raw_beacon", None)
        if (
            takes is None
            or self.expect_100_continue
            or self.parser.should_upgrade()
            or not (self.cycle is None or self.cycle.response_complete)
        ):
            return False
        peer = self.client[0] if self.client else None
        client = ClientInfo.of(peer, self.headers, self.scheme or "http")
        if not takes(client.headers):
            return False
        self._raw = (client, bytearray())
        self.cycle = _RawBeacon()  # type: ignore[assignment]  # requests behind it queue
        return True

    async def _answer_raw(self, in_flight: _RawBeacon, client: ClientInfo, body: bytes) -> None:
        try:
            status, headers, content = await self.app.collect_raw(client, body)
        finally:
            in_flight.response_complete = True
        if self.transport.is_closing():
            return  # the client went away (the events are stored all the same)
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        for key, text in headers.items():
            head += [key.lower().encode("latin-1"), b": ", text.encode("latin-1"), b"\r\n"]
        if not in_flight.keep_alive:
            head.append(b"connection: close\r\n")
        head += [b"\r\n", content]
        self.transport.write(b"".join(head))
        if not in_flight.keep_alive:
            self.transport.close()
        self.on_response_complete()  # starts a queued request, or the keep-alive timer

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._phase is not None:
            # A next request is already arriving (pipelined): its own deadline bounds
            # it, and the idle timer uvicorn has just set must not cut it off.
            self._unset_keepalive_if_required()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)
        self._armed = seconds

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._armed = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _RawBeacon:
    """Stands in for uvicorn's request cycle while a beacon is answered raw: what
    uvicorn reads of ``self.cycle`` (a request behind it is queued until it completes;
    a lost connection or a shutdown marks it)."""

    def __init__(self) -> None:
        self.response_complete = False
        self.keep_alive = True
        self.disconnected = False
        self.message_event = asyncio.Event()
