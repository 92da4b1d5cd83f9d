"""The HTTP server against real clients: http.client, urllib, curl and raw sockets."""

from __future__ import annotations

import http.client
import json
import logging
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

import gofer
from gofer import http as ghttp
from gofer.http.testing import ServerThread


def app(req: ghttp.Request) -> object:
    path = req.path
    if path == "/":
        return b"Hello, World!"
    if path == "/json":
        return ghttp.Response.json({"message": "Hello, World!"})
    if path == "/echo":
        body = req.body()
        return ghttp.Response(body, headers=[("X-Method", req.method), ("X-Len", str(len(body)))])
    if path == "/stream":
        def gen() -> Iterator[bytes]:
            for i in range(5):
                yield b"part%d;" % i
                gofer.sleep(0.001)
        return ghttp.Response(gen(), content_type="text/plain")
    if path == "/boom":
        raise RuntimeError("handler failure")
    if path == "/teapot":
        raise ghttp.HTTPError(418)
    if path == "/headers":
        return ghttp.Response.json(dict(req.headers))
    if path == "/query":
        return ghttp.Response.json({"query": req.query, "args": req.args})
    if path == "/nocontent":
        return ghttp.Response(b"", status=204)
    if path == "/sum":
        total = 0
        for chunk in req.stream():
            total += len(chunk)
        return str(total)
    return ghttp.Response(b"not found", status=404)


@pytest.fixture
def srv() -> Iterator[ServerThread]:
    with ServerThread(app) as s:
        yield s


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` and read until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = []
        while True:
            try:
                b = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not b:
                break
            out.append(b)
        return b"".join(out)


def statuses(resp: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", resp)]


def test_http_client_keepalive(srv: ServerThread) -> None:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    for _ in range(3):
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200
        assert r.read() == b"Hello, World!"
        assert r.getheader("Content-Type") == "text/plain; charset=utf-8"
        assert r.getheader("Server") == "gofer"
        assert r.getheader("Date", "").endswith("GMT")
    sock = c.sock
    c.request("POST", "/echo", body=b"x" * 100000)
    r = c.getresponse()
    assert r.read() == b"x" * 100000
    assert r.getheader("X-Method") == "POST"
    assert c.sock is sock  # the same connection throughout
    c.close()


def test_json_and_query(srv: ServerThread) -> None:
    with urllib.request.urlopen(srv.url + "/json", timeout=5) as r:
        assert r.headers["Content-Type"] == "application/json"
        assert json.loads(r.read()) == {"message": "Hello, World!"}
    with urllib.request.urlopen(srv.url + "/query?a=1&a=2&b=%20x", timeout=5) as r:
        assert json.loads(r.read()) == {"query": "a=1&a=2&b=%20x", "args": {"a": ["1", "2"], "b": [" x"]}}


def test_chunked_request_and_streamed_response(srv: ServerThread) -> None:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.request("POST", "/echo", body=iter([b"abc", b"defg", b""]), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    assert r.read() == b"abcdefg"
    c.request("GET", "/stream")
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.read() == b"part0;part1;part2;part3;part4;"
    c.request("GET", "/")  # still usable after a chunked response
    assert c.getresponse().read() == b"Hello, World!"
    c.close()


def test_head_and_204(srv: ServerThread) -> None:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.request("HEAD", "/")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "13"
    assert r.read() == b""
    c.request("HEAD", "/stream")
    r = c.getresponse()
    assert r.read() == b""
    c.request("GET", "/nocontent")
    r = c.getresponse()
    assert r.status == 204 and r.getheader("Content-Length") is None
    assert r.read() == b""
    c.request("GET", "/")
    assert c.getresponse().read() == b"Hello, World!"
    c.close()


def test_pipelining_in_order(srv: ServerThread) -> None:
    reqs = b"".join(
        b"GET /query?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20)
    ) + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw(srv.port, reqs)
    assert statuses(out) == [200] * 21
    order = [int(x) for x in re.findall(rb'"query":"i=(\d+)"', out)]
    assert order == list(range(20))
    assert out.endswith(b"Hello, World!")


def test_expect_100_continue(srv: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        first = s.recv(100)
        assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        resp = s.recv(1000)
        assert resp.startswith(b"HTTP/1.1 200 OK") and resp.endswith(b"hello")


def test_expect_100_continue_is_ignored_for_http_1_0(srv: ServerThread) -> None:
    # RFC 9110 §10.1.1: MUST ignore it; an HTTP/1.0 client knows no 1xx answer.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
        out = b""
        while chunk := s.recv(1000):
            out += chunk
    assert b"100 Continue" not in out
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"hello")


def test_expect_without_reading_closes(srv: ServerThread) -> None:
    # The handler answers without reading: no 100, and the connection ends
    # (the client may or may not send the body now).
    out = raw(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert statuses(out) == [200]
    assert b"100 Continue" not in out
    assert b"Connection: close" in out


def test_unsupported_expect_is_417(srv: ServerThread) -> None:
    out = raw(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n")
    assert statuses(out) == [417]


def test_handler_exception_is_500_and_logged(srv: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="gofer.http"):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        c.request("GET", "/boom")
        r = c.getresponse()
        assert r.status == 500
        r.read()
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        c.request("GET", "/teapot")
        r = c.getresponse()
        assert r.status == 418
        r.read()
        c.request("GET", "/")
        assert c.getresponse().read() == b"Hello, World!"  # the server lives on
        c.close()
    assert any("handler failure" in (r.exc_text or "") for r in caplog.records)


def test_http10(srv: ServerThread) -> None:
    out = raw(srv.port, b"GET / HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in out
    out = raw(srv.port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n")
    assert statuses(out) == [200, 200]
    assert b"Connection: keep-alive" in out
    out = raw(srv.port, b"GET /stream HTTP/1.0\r\n\r\n")
    assert b"chunked" not in out and out.endswith(b"part4;")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(srv: ServerThread) -> None:
    out = subprocess.run(
        ["curl", "-s", "-i", "--http1.1", srv.url + "/", srv.url + "/json", "-H", "X-A: b"],
        capture_output=True, timeout=20, check=True,
    ).stdout
    assert out.count(b"HTTP/1.1 200 OK") == 2 and b'{"message":"Hello, World!"}' in out
    out = subprocess.run(
        ["curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", srv.url + "/echo"],
        input=b"z" * 70000, capture_output=True, timeout=20, check=True,
    ).stdout
    assert out == b"z" * 70000
    out = subprocess.run(
        ["curl", "-s", "--data-binary", "@-", srv.url + "/sum"],  # large: curl sends Expect: 100-continue
        input=b"q" * 2_000_000, capture_output=True, timeout=20, check=True,
    ).stdout
    assert out == b"2000000"


def test_client_disconnect_mid_response_keeps_serving(srv: ServerThread) -> None:
    def big(req: ghttp.Request) -> ghttp.Response:
        return ghttp.Response(iter([b"x" * 65536] * 200))

    with ServerThread(big) as s2:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", s2.port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(1000)
            # the socket is closed with most of the body unread
        time.sleep(0.05)
        c = http.client.HTTPConnection("127.0.0.1", s2.port, timeout=10)
        c.request("GET", "/")
        assert len(c.getresponse().read()) == 65536 * 200
        c.close()
        assert s2.server is not None
    # the other server was unaffected
    assert raw(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").endswith(b"Hello, World!")


def test_graceful_shutdown_finishes_in_flight() -> None:
    def slow(req: ghttp.Request) -> bytes:
        gofer.sleep(0.3)
        return b"done"

    s = ServerThread(slow, grace=5).start()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    c.request("GET", "/")
    time.sleep(0.1)  # the request is in the handler now
    import threading

    stopper = threading.Thread(target=s.stop)
    stopper.start()
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"done"
    assert r.getheader("Connection") == "close"
    stopper.join(10)
    assert not stopper.is_alive()
    c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()


def test_truncated_request_then_eof_never_hangs(srv: ServerThread) -> None:
    # Data and FIN arriving together used to leave a drained socket parked
    # forever (the EOF edge was consumed before the short read).
    req = b"POST /" + b"p" * 200 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    for i in range(300):
        out = raw(srv.port, req[: 1 + (i * 37) % len(req)], timeout=5)
        assert out == b"" or out.startswith(b"HTTP/1.1 ")


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_load_without_errors(srv: ServerThread) -> None:
    out = subprocess.run(
        ["wrk", "-t1", "-c20", "-d1s", srv.url + "/json"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    assert n > 100
    assert "Non-2xx" not in out and "Socket errors" not in out, out


def test_served_by_gofer_net_serve_raw_socket() -> None:
    # handle_connection takes over a gofer socket (as gofer.net.serve(raw=True) gives).
    from gofer import socket as gsocket
    from gofer.http.server import Server, listen

    def main() -> bytes:
        server = Server(app)
        lsock = listen(("127.0.0.1", 0))
        port = lsock.getsockname()[1]

        def one() -> None:
            while True:
                try:
                    s, _ = lsock.accept()
                    break
                except BlockingIOError:
                    gofer.sleep(0.001)
            g = gsocket.socket(s.family, s.type, s.proto, fileno=s.detach())
            server.handle_connection(g)

        t = gofer.go(one)
        with gsocket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(4096):
                data += chunk
        t.join()
        lsock.close()
        return data

    assert gofer.run(main).endswith(b"Hello, World!")


def test_unread_small_body_is_drained_and_connection_kept(srv: ServerThread) -> None:
    # "/" never reads its body: the server drops the 5 bytes and goes on.
    out = raw(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                        b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(out) == [200, 200]
    assert b"Connection: close" not in out
    assert out.endswith(b'{"message":"Hello, World!"}')
    # A large unread body is not drained: the connection closes instead.
    body = b"z" * 200_000
    out = raw(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
                        + b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(out) == [200]
    assert b"Connection: close" in out
