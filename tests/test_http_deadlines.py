"""The request deadlines of tracker.http, on a real uvicorn with short timeouts.

A request left half-read — head or body — is cut off when its deadline passes; a request
that arrives whole (the hot path) or in quick parts is answered, and the connection then
serves the next one. Between requests, the idle (keep-alive) deadline holds whatever
bytes that begin no request (bare CRLFs) a client drips.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.servers import serve_script

SERVER = """
import sys, uvicorn, tracker.http as h
keep_alive = float(sys.argv[2]) if len(sys.argv) > 2 else 5
h.HEAD_TIMEOUT = h.BODY_TIMEOUT = 0.5
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, port=int(sys.argv[1]), http=h.BoundedHttpToolsProtocol, log_level="error",
            lifespan="off", timeout_keep_alive=keep_alive)
"""
HEAD = b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    yield from serve_script(SERVER)


@pytest.fixture(scope="module")
def short_idle_port() -> Iterator[int]:
    """A server whose idle (keep-alive) deadline is 1 s."""
    yield from serve_script(SERVER, "1")


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False


@pytest.mark.parametrize(
    "sent", [b"POST /coll", HEAD, HEAD + b"\r\n{"], ids=["url", "head", "body"]
)
def test_a_half_read_request_is_cut_off_at_its_deadline(port: int, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        assert closed_within(sock, 4)
        assert time.monotonic() - started < 3  # the 0.5 s deadline, plus slack for a busy CI


def test_whole_and_quickly_split_requests_are_answered_on_one_connection(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(3)
        for parts in ([HEAD + b"\r\n{}"], [HEAD, b"\r\n{", b"}"], [HEAD + b"\r\n{}"]):
            for part in parts:
                sock.sendall(part)
                time.sleep(0.2)  # a slow client (the test): each part well within the deadline
            assert sock.recv(1024).startswith(b"HTTP/1.1 204")
        # Answered and idle, the connection is not cut by a leftover request deadline.
        assert not closed_within(sock, 1)


def answered(sock: socket.socket) -> bool:
    sock.sendall(HEAD + b"\r\n{}")
    return sock.recv(1024).startswith(b"HTTP/1.1 204")


def hung_up(sock: socket.socket) -> bool:
    """The server closed ``sock``: an end of stream, or a reset (a close with our CRLFs
    still unread makes the kernel answer with RST)."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def drip_refused(sock: socket.socket) -> bool:
    """Send one bare CRLF; True if the connection is already gone."""
    try:
        sock.sendall(b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        return True
    return False


def test_crlf_dripped_after_a_request_does_not_hold_the_connection(short_idle_port: int) -> None:
    # The keep-alive slowloris: one whole request, then a bare CRLF (which llhttp skips
    # and which begins no request) every 0.2 s on each of 20 connections.
    socks = [socket.create_connection(("127.0.0.1", short_idle_port)) for _ in range(20)]
    try:
        for sock in socks:
            sock.settimeout(3)
            assert answered(sock)
        started, open_ = time.monotonic(), list(socks)
        while open_ and time.monotonic() - started < 6:
            open_ = [s for s in open_ if not drip_refused(s)]
            readable, _, _ = select.select(open_, [], [], 0.2)
            open_ = [s for s in open_ if s not in readable or not hung_up(s)]
        assert not open_, f"{len(open_)} of 20 connections still open after 6 s"
        assert time.monotonic() - started < 4  # the 1 s idle deadline, plus slack for a busy CI
    finally:
        for sock in socks:
            sock.close()
    with socket.create_connection(("127.0.0.1", short_idle_port), timeout=3) as sock:
        assert answered(sock)


@pytest.mark.parametrize("lead", [b"", b"\r\n\r\n"], ids=["plain", "after-crlf"])
def test_a_later_request_left_half_read_is_cut_off(short_idle_port: int, lead: bytes) -> None:
    with socket.create_connection(("127.0.0.1", short_idle_port)) as sock:
        sock.settimeout(3)
        assert answered(sock)
        assert answered(sock)
        sock.sendall(lead + b"POST /coll")
        started = time.monotonic()
        assert closed_within(sock, 4)
        assert time.monotonic() - started < 3  # the 0.5 s deadline, plus slack for a busy CI
