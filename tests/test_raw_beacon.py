"""The beacon answered by tracker.http itself, without the ASGI layer.

On a real uvicorn: which requests take that path (a lone ``POST /collect`` with a
declared length the app accepts), that requests pipelined behind one are answered after
it and in order, keep-alive and ``Connection: close``, the body deadline. Then on a real
collector: a request answered on that path gets exactly the answer the ASGI path gives
the same request (the second of two pipelined requests always takes the ASGI path).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.conftest import SITE_ORIGIN, Deployment, make_deployment
from tests.servers import serve_script

SERVER = """
import asyncio, sys, uvicorn, tracker.http as h
h.HEAD_TIMEOUT = h.BODY_TIMEOUT = 0.5

class App:
    def takes_raw_beacon(self, headers):
        declared = headers.get("content-length", "")
        return declared.isdigit() and int(declared) <= 64

    async def collect_raw(self, client, body):
        await asyncio.sleep(float(client.headers.get("user-agent", "0")))
        return 204, {"X-Path": "raw", "X-Body": body.decode()}, b""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = [(b"x-path", b"asgi"), (b"x-body", body)]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

uvicorn.run(App(), port=int(sys.argv[1]), http=h.BoundedHttpToolsProtocol,
            log_level="error", lifespan="off", proxy_headers=False, server_header=False)
"""


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    yield from serve_script(SERVER)


def post(body: bytes, *, delay: float = 0, path: bytes = b"/collect", extra: bytes = b"") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: %g\r\n" % delay
        + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )  # fmt: skip


def answers(sock: socket.socket, count: int) -> list[dict[str, str]]:
    """``count`` head-only answers (status and headers, lower-case names, no date)."""
    data, found = b"", []
    sock.settimeout(5)
    while len(found) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(found)} answers"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines)
        fields.pop("date", None)  # (a 100 Continue has none)
        found.append({"status": status, **fields})
    return found


def test_a_beacon_is_answered_raw_and_requests_behind_it_after_it_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        # The first is slow to answer: those pipelined behind it wait for it.
        sock.sendall(post(b"a", delay=0.3) + post(b"b") + b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second, third = answers(sock, 3)
        assert (first["x-path"], first["x-body"]) == ("raw", "a")
        assert (second["x-path"], second["x-body"]) == ("asgi", "b")
        assert third["x-path"] == "asgi"
        # Kept alive: the next lone beacon is answered raw again.
        sock.sendall(post(b"c"))
        assert answers(sock, 1)[0] | {"status": ""} == {
            "status": "",
            "x-path": "raw",
            "x-body": "c",
        }


@pytest.mark.parametrize(
    "request_",
    [
        post(b"{}", path=b"/collect?x=1"),
        post(b"{}", path=b"/other"),
        post(b"x" * 65),  # more than the app takes
        b"GET /collect HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /collect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        post(b"{}", extra=b"Expect: 100-continue\r\n"),
    ],
    ids=["query", "path", "too-long", "get", "chunked", "expect"],
)
def test_anything_but_a_lone_post_to_collect_within_the_limit_goes_through_asgi(
    port: int, request_: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_)
        found = answers(sock, 2 if b"100-continue" in request_ else 1)[-1]
        assert found["x-path"] == "asgi"


@pytest.mark.parametrize(
    ("request_", "closed"),
    [
        (post(b"a").replace(b"HTTP/1.1", b"HTTP/1.0"), True),
        (post(b"a", extra=b"Connection: close\r\n"), True),
        (post(b"a"), False),
    ],
    ids=["http-1.0", "connection-close", "keep-alive"],
)
def test_a_raw_answer_keeps_the_connection_as_the_client_asked(
    port: int, request_: bytes, closed: bool
) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_)
        found = answers(sock, 1)[0]
        assert found["x-path"] == "raw"
        assert (found.get("connection") == "close") is closed
        sock.settimeout(1)
        try:
            ended = sock.recv(1) == b""
        except TimeoutError:
            ended = False
        assert ended is closed


def test_a_beacon_left_half_read_is_cut_off_at_its_deadline(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post(b"abcd")[:-2])
        started = time.monotonic()
        sock.settimeout(4)
        assert sock.recv(1024) == b""
        assert time.monotonic() - started < 3  # the 0.5 s deadline, plus slack for CI


def test_a_client_gone_before_its_answer_leaves_the_server_serving(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post(b"a", delay=0.3))
    time.sleep(0.5)  # answered to a closed connection
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post(b"b"))
        assert answers(sock, 1)[0]["x-body"] == "b"


# -- the real collector: the same answers on both paths --------------------------------
@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = make_deployment(tmp_path_factory.mktemp("raw"), backend="sqlite")
    dep.server.start()
    yield dep
    dep.server.stop()


def _beacon(body: bytes, *, origin: str, kind: str) -> bytes:
    return (
        b"POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: %s\r\nContent-Type: %s\r\n"
        b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML,"
        b" like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nContent-Length: %d\r\n\r\n%s"
        % (origin.encode(), kind.encode(), len(body), body)
    )


@pytest.mark.parametrize(
    "case", ["valid", "batch", "not-json", "invalid", "empty", "media-type", "foreign-origin"]
)
def test_the_raw_path_answers_as_the_asgi_path_does(deployment: Deployment, case: str) -> None:
    dep = deployment
    beacon = dep.beacon()
    body = {
        "valid": orjson.dumps(beacon),
        "batch": orjson.dumps({"events": [dep.beacon(), dep.beacon()]}),
        "not-json": b"{",
        "invalid": orjson.dumps(beacon | {"vid": "x"}),
        "empty": b"",
    }.get(case, orjson.dumps(beacon))
    request_ = _beacon(
        body,
        origin="https://elsewhere.example" if case == "foreign-origin" else SITE_ORIGIN,
        kind="image/png" if case == "media-type" else "text/plain",
    )
    host, port = dep.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request_ + request_)  # the second is pipelined: it goes through ASGI
        raw, asgi = _with_bodies(sock)
    assert raw == asgi
    expected = {"valid": "204", "batch": "204", "foreign-origin": "204", "media-type": "415"}
    assert raw["status"].split()[1] == expected.get(case, "400")


def _with_bodies(sock: socket.socket) -> list[dict[str, str]]:
    """Two answers whose bodies have a content-length (the collector's always do)."""
    data, found = b"", []
    sock.settimeout(10)
    while len(found) < 2:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines)
        fields.pop("date")
        size = int(fields.get("content-length", "0"))
        while len(data) < size:
            data += sock.recv(65536)
        found.append({"status": status, **fields, "body": data[:size].decode()})
        data = data[size:]
    return found
