"""Fuzzing the server with random and mutated requests (hypothesis).

Whatever arrives, the server must answer with well-formed HTTP/1.1
responses (checked with llhttp's response parser) or close cleanly, never
hang, never log an internal error, and keep serving other clients.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gofer import http as ghttp
from gofer.http.testing import ServerThread


def app(req: ghttp.Request) -> ghttp.Response:
    body = req.body()
    if req.path.startswith("/stream"):
        return ghttp.Response(iter([b"a", body, b"z"]))
    return ghttp.Response(b"len=%d" % len(body), headers=[("X-Path", req.path[:50])])


LIMITS = ghttp.Limits(max_request_line=512, max_header_count=20, max_header_size=4096, max_body_size=4096)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(app, limits=LIMITS) as s:
        yield s


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may have closed already (e.g. after a 400)
        out = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(f"the server hung on {data[:200]!r}") from None
            if not b:
                break
            out.append(b)
    return b"".join(out)


class _Collect:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.parser: httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.statuses.append(self.parser.get_status_code())


def check_responses(data: bytes, request: bytes) -> None:
    if not data:
        return  # a clean close is allowed
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    if b"HEAD" in request:
        # Responses to HEAD carry no body despite their Content-Length: only
        # check the status lines.
        assert all(100 <= int(m) < 600 for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data))
        return
    c = _Collect()
    p = httptools.HttpResponseParser(c)
    c.parser = p
    p.feed_data(data)  # raises on a malformed response
    assert c.statuses and all(s in (200, 400, 404, 405, 408, 413, 414, 417, 431, 500, 501, 505) for s in c.statuses), c.statuses


METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"BREW", b""]
HEADERS = [
    b"Host: x", b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: 99999", b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked", b"Connection: close", b"Connection: keep-alive", b"Expect: 100-continue",
    b"Upgrade: websocket", b"Connection: Upgrade", b"X-Long: " + b"y" * 3000, b"Bad Header: 1", b"X:\x00",
    b"Content-Length: -1", b"Content-Length: 5, 5", b" Host: folded",
]
BODIES = [b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"0\r\n\r\n", b"3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n", b"x" * 5000]


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(METHODS))
    target = draw(st.sampled_from([b"/", b"/stream", b"/a?b=c", b"*", b"http://h/p", b"/%zz", b"/" + b"p" * 600, b""]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTX/1.1", b""]))
    headers = draw(st.lists(st.sampled_from(HEADERS), max_size=6))
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    body = draw(st.sampled_from(BODIES))
    req = method + b" " + target + b" " + version + eol + b"".join(h + eol for h in headers) + eol + body
    n = draw(st.integers(1, 3))  # pipelined copies
    data = req * n
    # Mutations: flip, insert or delete bytes, or truncate.
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if kind == "flip":
            data = data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
        elif kind == "insert":
            data = data[:i] + draw(st.binary(min_size=1, max_size=4)) + data[i:]
        elif kind == "delete":
            data = data[:i] + data[i + 1 :]
        else:
            data = data[:i]
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=requests())
def test_fuzz_mutated_requests(server: ServerThread, caplog: pytest.LogCaptureFixture, data: bytes) -> None:
    with caplog.at_level(logging.ERROR, logger="gofer.http"):
        out = exchange(server.port, data)
    check_responses(out, data)
    assert not [r for r in caplog.records if r.name == "gofer.http"], [r.getMessage() for r in caplog.records]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes(server: ServerThread, data: bytes) -> None:
    check_responses(exchange(server.port, data), data)


def test_server_survived(server: ServerThread) -> None:
    out = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"len=0")
    assert server.server is not None
