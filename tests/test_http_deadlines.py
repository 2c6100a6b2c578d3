"""The request deadlines of tracker.http, on a real uvicorn with short timeouts.

A request left half-read — head or body — is cut off when its deadline passes; a request
that arrives whole (the hot path) or in quick parts is answered, and the connection then
serves the next one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.servers import free_port

SERVER = """
import sys, uvicorn, tracker.http as h
h.HEAD_TIMEOUT = h.BODY_TIMEOUT = 0.5
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, port=int(sys.argv[1]), http=h.BoundedHttpToolsProtocol, log_level="error",
            lifespan="off")
"""
HEAD = b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


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
        assert closed_within(sock, 3)
        assert time.monotonic() - started < 2


def test_whole_and_quickly_split_requests_are_answered_on_one_connection(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(3)
        for parts in ([HEAD + b"\r\n{}"], [HEAD, b"\r\n{", b"}"], [HEAD + b"\r\n{}"]):
            for part in parts:
                sock.sendall(part)
                time.sleep(0.2)  # each part well within the deadline
            assert sock.recv(1024).startswith(b"HTTP/1.1 204")
        # Answered and idle, the connection is not cut by a leftover request deadline.
        assert not closed_within(sock, 1)
