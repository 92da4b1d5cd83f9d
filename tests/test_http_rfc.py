"""RFC 9110/9112 rules of issue 11, one test each, and the WSGI/client fixes (items 1-5).

Raw requests go through ``exchange`` (a server and a raw client in one hub,
on the virtual clock); the application echoes what it was given, so each
rule is checked on what reaches the application, not only on the status.
"""

from __future__ import annotations

import json
from typing import Any

import gofer
import gofer.socket as gsocket
from gofer import http
from gofer.http.server import Server, listen
from test_http_limits import exchange, statuses

H = b"Host: x\r\n"


def seen(req: http.Request) -> http.Response:
    """What the handler was given, as JSON."""
    return http.Response.json({
        "method": req.method, "target": req.target.decode(), "path": req.path, "query": req.query,
        "args": req.args, "host": req.host, "version": req.version, "body": req.body().decode("latin-1"),
    })


def body_of(resp: bytes) -> Any:
    return json.loads(resp.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[0].split(b"HTTP/1.1")[0])


def wsgi_exchange(data: bytes, app: Any) -> bytes:
    def main() -> bytes:
        lsock = listen(("127.0.0.1", 0))
        server = Server(app, interface="wsgi")
        t = gofer.go(server.serve_socket, lsock)
        try:
            with gsocket.create_connection(lsock.getsockname()) as c:
                c.sendall(data)
                out = []
                while b := c.recv(65536):
                    out.append(b)
                return b"".join(out)
        finally:
            server.shutdown(1)
            t.join()
            lsock.close()

    return gofer.testing.run(main)


def environ_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    keys = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI", "HTTP_HOST", "wsgi.input_terminated")
    body = json.dumps({k: environ.get(k) for k in keys} | {"body": environ["wsgi.input"].read().decode()})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


def wsgi_env(data: bytes) -> Any:
    return json.loads(wsgi_exchange(data, environ_app).split(b"\r\n\r\n", 1)[1])


# -- item 1: wsgi.input_terminated -------------------------------------------------------


def test_wsgi_input_terminated_and_chunked_body_read_to_eof() -> None:
    env = wsgi_env(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
    assert env["wsgi.input_terminated"] is True
    assert env["body"] == "hello world"


# -- item 2: HEAD keeps the application's Content-Length ------------------------------------


def test_head_keeps_the_applications_content_length() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"0123456789"]

    out = wsgi_exchange(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", app)
    head, get = out.split(b"HTTP/1.1 200 OK")[1:]
    assert b"Content-Length: 10\r\n" in head and head.endswith(b"\r\n\r\n")  # no body after the HEAD's head
    assert b"Content-Length: 10\r\n" in get and get.endswith(b"0123456789")


# -- item 3: a fragment is in neither the query nor the path ------------------------------------


def test_fragment_is_not_in_the_query_native_and_wsgi() -> None:
    got = body_of(exchange(b"GET /f/1?page=1#posts-17 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", app=seen))
    assert (got["path"], got["query"], got["args"]) == ("/f/1", "page=1", {"page": ["1"]})
    env = wsgi_env(b"GET /f/1?page=1#x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/f/1", "page=1")
    assert env["RAW_URI"] == "/f/1?page=1#x"
    env = wsgi_env(b"GET /p#a?b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/p", "")


# -- item 4: the client keeps its connection after a HEAD with Content-Length --------------------


def test_client_reuses_the_connection_after_head_with_content_length() -> None:
    from gofer.http.testing import ServerThread

    opened: list[Any] = []
    orig = gsocket.create_connection

    def counting(*a: Any, **k: Any) -> Any:
        opened.append(a[0])
        return orig(*a, **k)

    with ServerThread(lambda req: b"hello, world\n") as srv:
        def main() -> tuple[str | None, bytes]:
            c = http.Client()
            gsocket.create_connection = counting  # type: ignore[assignment]
            try:
                c.get(srv.url)
                r = c.head(srv.url)
                cl = r.headers.get("content-length")
                body = c.get(srv.url).body
                return cl, body
            finally:
                gsocket.create_connection = orig  # type: ignore[assignment]
                c.close()

        cl, body = gofer.run(main)
    assert cl == "13"
    assert body == b"hello, world\n"
    assert len(opened) == 1


# -- item 5: RFC 9110/9112 ---------------------------------------------------------------


def test_absolute_form_authority_replaces_host() -> None:  # RFC 9112 §3.2.2
    got = body_of(exchange(b"GET http://a.example/x?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n", app=seen))
    assert (got["host"], got["path"], got["query"]) == ("a.example", "/x", "q=1")
    env = wsgi_env(b"GET http://a.example:8080/x HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
    assert (env["HTTP_HOST"], env["PATH_INFO"]) == ("a.example:8080", "/x")
    assert statuses(exchange(b"GET http://u@a.example/ HTTP/1.1\r\n" + H + b"\r\n")) == [400]
    assert statuses(exchange(b"GET ftp://a.example/ HTTP/1.1\r\n" + H + b"\r\n")) == [400]


def test_invalid_host_values_get_400() -> None:  # RFC 9112 §3.2
    for bad in (b"a b", b"x@evil", b"a/b", b"[::1", b"x:8o"):
        assert statuses(exchange(b"GET / HTTP/1.1\r\nHost: " + bad + b"\r\n\r\n")) == [400], bad
    for good in (b"a.example", b"a.example:8080", b"[::1]:80", b"127.0.0.1", b"", b"xn--nxasmq6b.example"):
        assert statuses(exchange(b"GET / HTTP/1.1\r\nHost: " + good + b"\r\nConnection: close\r\n\r\n")) == [200], good


def test_transfer_codings_other_than_chunked_get_501() -> None:
    te = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert statuses(exchange(te)) == [501]
    two = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert statuses(exchange(two)) == [501]
    twice = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"
    assert statuses(exchange(twice)) == [400]


def test_extension_methods_are_tokens() -> None:  # RFC 9110 §9.1
    for m in (b"PURGE", b"FOO", b"BREW", b"X-CUSTOM", b"M-SEARCH", b"get", b"DESCRIBE"):
        got = body_of(exchange(m + b" /r HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", app=seen))
        assert got["method"] == m.decode() and got["path"] == "/r", m
    # with a body, pipelined behind another request, and split across reads
    req = b"BREW /pot HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\ntea"
    out = exchange([b"GET / HTTP/1.1\r\n" + H + b"\r\n" + req[:2], req[2:] + b"FOO / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"],
                   app=seen, pause=0.1)
    assert statuses(out) == [200, 200, 200]
    assert b'"method":"BREW"' in out and b'"body":"tea"' in out and b'"method":"FOO"' in out
    assert statuses(exchange(b"G@T / HTTP/1.1\r\n" + H + b"\r\n")) == [400]  # not a token
    assert statuses(exchange(b"X" * 65 + b" / HTTP/1.1\r\n" + H + b"\r\n")) == [501]  # too long: not implemented


def test_http_1_2_is_handled_as_1_1() -> None:  # RFC 9112 §2.3
    out = exchange(b"GET / HTTP/1.2\r\n" + H + b"\r\nGET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", app=seen)
    assert statuses(out) == [200, 200]  # kept alive, as 1.1
    assert b'"version":"1.1"' in out
    assert statuses(exchange(b"GET / HTTP/1.2\r\n\r\n")) == [400]  # and needs a Host, as 1.1


def test_transfer_encoding_chunked_with_trailing_tab() -> None:
    for te in (b"chunked\t", b"chunked \t", b"\tchunked"):
        req = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: " + te + b"\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        assert body_of(exchange(req, app=seen))["body"] == "hello", te


def test_chunk_extensions_with_bad_whitespace_are_accepted() -> None:  # RFC 9112 §7.1.1 BWS
    for line in (b"5 ; a=b", b"5;a = b", b"5\t;\ta\t=\t\"q d\"", b"5;a;b=c ; d", b"5;a=\"x\\\"y\""):
        req = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + line + b"\r\nhello\r\n0\r\n\r\n"
        assert body_of(exchange(req, app=seen))["body"] == "hello", line
    for bad in (b"5 ", b"5;", b"5;a=", b"0x5", b"-5", b"5;a=\"x", b"5 a", b"11111111111111111"):
        req = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + bad + b"\r\nhello\r\n0\r\n\r\n"
        assert statuses(exchange(req)) == [400], bad
    split = [b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5 ;", b" a=b\r\nhel",
             b"lo\r", b"\n0\r\nX-T: 1\r", b"\n\r\n"]
    assert body_of(exchange(split, app=seen, pause=0.1))["body"] == "hello"


def test_asterisk_form_only_for_options() -> None:  # RFC 9112 §3.2.4
    assert statuses(exchange(b"GET * HTTP/1.1\r\n" + H + b"\r\n")) == [400]
    env = wsgi_env(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (env["REQUEST_METHOD"], env["PATH_INFO"], env["RAW_URI"]) == ("OPTIONS", "*", "*")


def test_connect_reaches_the_app_with_its_authority() -> None:  # RFC 9112 §3.2.3
    env = wsgi_env(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")
    assert (env["REQUEST_METHOD"], env["PATH_INFO"], env["RAW_URI"]) == ("CONNECT", "a.example:443", "a.example:443")
    assert statuses(exchange(b"CONNECT a.example HTTP/1.1\r\nHost: a.example\r\n\r\n")) == [400]  # no port
    assert statuses(exchange(b"GET a.example:443 HTTP/1.1\r\n" + H + b"\r\n")) == [400]  # authority-form is CONNECT's


def test_framing_and_host_trailers_are_refused() -> None:  # RFC 9110 §6.5.1
    for name in (b"Host", b"Content-Length", b"Transfer-Encoding"):
        req = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n" + name + b": 1\r\n\r\n"
        assert statuses(exchange(req)) == [400], name


def test_trailer_fields_count_against_the_header_limit() -> None:
    lim = http.Limits(max_header_count=5)
    head = b"POST / HTTP/1.1\r\n" + H + b"A: 1\r\nB: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
    assert statuses(exchange(head + b"T1: 1\r\n\r\n", lim)) == [200]  # 4 + 1
    assert statuses(exchange(head + b"T1: 1\r\nT2: 2\r\n\r\n", lim)) == [431]  # 4 + 2


def test_header_timeout_counts_from_the_first_byte() -> None:
    lim = http.Limits(header_timeout=10, keepalive_timeout=100)
    # One byte first, then a byte a second: cut 10 s after the first byte (within two sweeps).
    pieces = [b"G", b"E", b"T", b" "] + [b"/"] * 30

    def main() -> tuple[bytes, float]:
        from test_http_limits import exchange_in_hub

        t0 = gofer.get_hub().now()
        out = exchange_in_hub(pieces, lim, pause=1.0)
        return out, gofer.get_hub().now() - t0

    out, elapsed = gofer.testing.run(main)
    assert statuses(out) == [408]
    assert 10 <= elapsed <= 10 + 2 * lim.header_timeout / 8 + 1  # virtual time: exact, not a wall-clock bound


def test_per_field_size_limit() -> None:
    lim = http.Limits(max_field_size=100)
    assert statuses(exchange(b"GET / HTTP/1.1\r\n" + H + b"X: " + b"a" * 90 + b"\r\nConnection: close\r\n\r\n", lim)) == [200]
    assert statuses(exchange(b"GET / HTTP/1.1\r\n" + H + b"X: " + b"a" * 100 + b"\r\n\r\n", lim)) == [431]
    assert http.Limits().max_field_size == 8190  # as gunicorn's limit_request_field_size


def test_empty_lines_before_a_request_are_ignored() -> None:  # RFC 9112 §2.2
    out = exchange(b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert statuses(out) == [200, 200]


def test_a_whole_read_that_llhttp_refuses_is_parsed_again_aligned() -> None:
    # One read: feed() tries it whole, llhttp refuses BREW or the chunk extension's
    # whitespace, and what was queued is undone before the aligned parse: each
    # request is answered once, in order.
    burst = (b"GET /1 HTTP/1.1\r\n" + H + b"\r\n"
             b"BREW /2 HTTP/1.1\r\n" + H + b"\r\n"
             b"POST /3 HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3 ; a=b\r\ntea\r\n0\r\n\r\n"
             b"GET /4 HTTP/1.2\r\n" + H + b"Connection: close\r\n\r\n")
    out = exchange(burst, app=seen)
    assert statuses(out) == [200, 200, 200, 200]
    got = [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in out.split(b"HTTP/1.1 200 OK")[1:]]
    assert [(g["method"], g["path"], g["body"]) for g in got] == [
        ("GET", "/1", ""), ("BREW", "/2", ""), ("POST", "/3", "tea"), ("GET", "/4", "")]
