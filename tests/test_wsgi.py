"""WSGI on the gofer server: PEP 3333 via wsgiref.validate, streaming, errors, Flask."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import warnings
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest

from gofer.http.testing import ServerThread

Environ = dict[str, Any]


def echo_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path.startswith("/env"):
        body = json.dumps({k: v for k, v in environ.items() if isinstance(v, str)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/echo":
        parts = []
        while True:
            piece = environ["wsgi.input"].read(8192)  # the validator wants a size
            if not piece:
                break
            parts.append(piece)
        data = b"".join(parts)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]
    if path == "/lines":
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % len(lines)]
    if path == "/gen":
        def gen() -> Iterator[bytes]:
            yield b"a"
            yield b""
            yield b"bc"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")
        return [b"returned"]
    if path == "/boom":
        raise RuntimeError("wsgi failure")
    if path == "/split":
        start_response("200 OK\r\nSet-Cookie: evil=1", [("Content-Type", "text/plain")])
        return [b"split"]
    if path == "/split-header":
        start_response("200 OK", [("X-A", "v\r\nSet-Cookie: evil=1")])
        return [b"split"]
    if path == "/late-boom":
        def bad() -> Iterator[bytes]:
            yield b"start"
            raise RuntimeError("late failure")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return bad()
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("replaced")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


@pytest.fixture
def srv() -> Iterator[ServerThread]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # wsgiref.validate warns on protocol slips
        with ServerThread(validator(echo_app), interface="wsgi") as s:
            yield s


def get(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_environ(srv: ServerThread) -> None:
    status, _, body = get(srv.port, "GET", "/env?x=1&y=%20", headers={"X-Custom": "v", "X_Under": "dropped", "Cookie": "a=1"})
    env = json.loads(body)
    assert status == 200
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/env"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["HTTP_X_CUSTOM"] == "v"
    assert env["HTTP_COOKIE"] == "a=1"
    assert "HTTP_X_UNDER" not in env  # underscores could pose as dashes
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(srv.port)
    assert env["wsgi.url_scheme"] == "http"
    assert env["SCRIPT_NAME"] == ""


def test_environ_peer_address_is_each_connections_own(srv: ServerThread) -> None:
    # The constant part of the environ is shared by the connections on one
    # local address; the peer's address is set per request.
    conns = [http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5) for _ in range(2)]
    try:
        for _ in range(2):  # and again on the same connections (keep-alive)
            for c in conns:
                c.request("GET", "/env")
                env = json.loads(c.getresponse().read())
                assert c.sock is not None
                assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(c.sock.getsockname()[1]))
                assert env["SERVER_PORT"] == str(srv.port)
    finally:
        for c in conns:
            c.close()


def test_path_is_percent_decoded_latin1(srv: ServerThread) -> None:
    _, _, body = get(srv.port, "GET", "/env/%C3%A9%2Fx")
    assert json.loads(body)["PATH_INFO"] == "/env/\u00c3\u00a9/x"


def test_post_body_and_content_headers(srv: ServerThread) -> None:
    status, _, body = get(srv.port, "POST", "/echo", body=b"payload" * 1000, headers={"Content-Type": "x/y"})
    assert status == 200 and body == b"payload" * 1000
    status, _, body = get(srv.port, "POST", "/lines", body=b"a\nb\nc")
    assert body == b"3"


def test_chunked_upload(srv: ServerThread) -> None:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.request("POST", "/echo", body=iter([b"x" * 10, b"y" * 70000]), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    assert c.getresponse().read() == b"x" * 10 + b"y" * 70000
    c.close()


def test_generator_and_write(srv: ServerThread) -> None:
    _, headers, body = get(srv.port, "GET", "/gen")
    assert body == b"abc" and headers.get("transfer-encoding") == "chunked"
    _, headers, body = get(srv.port, "GET", "/write")
    assert body == b"written;returned"


def test_app_errors(srv: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="gofer.http"):
        status, _, _ = get(srv.port, "GET", "/boom")
        assert status == 500
        status, _, _ = get(srv.port, "GET", "/exc-info")
        assert status == 500
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"GET /late-boom HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        # The head and first piece went out; the body is cut short (no last chunk).
        assert data.startswith(b"HTTP/1.1 200 OK") and b"start" in data and not data.endswith(b"0\r\n\r\n")
    assert any("wsgi failure" in (r.exc_text or "") for r in caplog.records)
    assert get(srv.port, "GET", "/env")[0] == 200


def test_response_splitting_refused(caplog: pytest.LogCaptureFixture) -> None:
    with ServerThread(echo_app, interface="wsgi") as s, caplog.at_level(logging.CRITICAL, logger="gofer.http"):
        for path in ("/split", "/split-header"):
            status, headers, _ = get(s.port, "GET", path)
            assert status == 500 and "set-cookie" not in headers


def test_head_and_keepalive(srv: ServerThread) -> None:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.request("HEAD", "/env")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b""
    c.request("GET", "/nope")
    r = c.getresponse()
    assert r.status == 404 and r.read() == b"not found"
    c.close()


def test_pipelined_wsgi(srv: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /gen HTTP/1.1\r\nHost: x\r\n\r\n" * 5 + b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    assert [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)] == [200] * 5 + [404]


flask = pytest.importorskip("flask")


def make_flask_app() -> Any:
    app = flask.Flask("gofer_test")

    @app.get("/")
    def index() -> str:
        return "hello from flask"

    @app.post("/items")
    def items() -> Any:
        data = flask.request.get_json()
        return flask.jsonify({"got": data, "n": len(data)}), 201

    @app.get("/err")
    def err() -> str:
        raise ValueError("flask failure")

    return app


def test_flask_app() -> None:
    with ServerThread(make_flask_app(), interface="wsgi") as s:
        status, _, body = get(s.port, "GET", "/")
        assert status == 200 and body == b"hello from flask"
        status, _, body = get(s.port, "POST", "/items", body=b"[1, 2, 3]", headers={"Content-Type": "application/json"})
        assert status == 201 and json.loads(body) == {"got": [1, 2, 3], "n": 3}
        status, _, _ = get(s.port, "GET", "/missing")
        assert status == 404
        logging.getLogger("gofer_test").disabled = True
        status, _, _ = get(s.port, "GET", "/err")
        assert status == 500
