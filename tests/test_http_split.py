"""However a pipelined burst is cut into reads, the server answers it the same (hypothesis).

The server parses a read whole when it can and one message part at a time
when it must (extension methods, chunked bodies, heads split across reads),
undoing a whole parse that llhttp refused. This checks the two paths
against each other: a burst of valid requests of every kind, sent in one
piece or cut at random points, gets the same responses (less ``Date``).
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import gofer
import gofer.socket as gsocket
from gofer import http
from gofer.http.server import Server, listen


def app(req: http.Request) -> http.Response:
    body = req.body()
    return http.Response(b"%s %s %d %s" % (req.method.encode(), req.target, len(body), body[:20]))


def _chunked(body: bytes, ext: bytes) -> bytes:
    out = b""
    for i in range(0, len(body), 3):
        piece = body[i : i + 3]
        out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
    return out + b"0\r\n\r\n"


@st.composite
def request(draw: Any) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"PURGE", b"BREW", b"X-CUSTOM", b"HEAD"]))
    path = b"/" + draw(st.binary(min_size=0, max_size=8).map(lambda b: b.hex().encode()))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.2"]))
    body = draw(st.binary(max_size=20))
    kind = draw(st.sampled_from(["none", "length", "chunked"]))
    head = method + b" " + path + b" " + version + b"\r\nHost: x\r\n"
    if kind == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    if kind == "chunked":
        te = draw(st.sampled_from([b"chunked", b"chunked\t"]))
        ext = draw(st.sampled_from([b"", b";a=b", b" ; a = b"]))
        return head + b"Transfer-Encoding: " + te + b"\r\n\r\n" + _chunked(body, ext)
    return head + b"\r\n"


def serve_pieces(pieces: list[bytes]) -> bytes:
    def main() -> bytes:
        lsock = listen(("127.0.0.1", 0))
        server = Server(app)
        t = gofer.go(server.serve_socket, lsock)
        try:
            with gsocket.create_connection(lsock.getsockname()) as c:
                for p in pieces:
                    c.sendall(p)
                    gofer.sleep(0.01)  # one read each
                c.shutdown(2 - 1)  # SHUT_WR: the server answers, then sees the end
                out = []
                while b := c.recv(65536):
                    out.append(b)
                return b"".join(out)
        finally:
            server.shutdown(1)
            t.join()
            lsock.close()

    # Only a real Date field (its exact IMF-fixdate form after a CRLF): an
    # echoed random body may hold "Date: " too.
    return re.sub(_DATE, b"\r\n", gofer.testing.run(main))


_DATE = re.compile(rb"\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")


_GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
_BREW = b"BREW /b HTTP/1.2\r\nHost: x\r\nContent-Length: 3\r\n\r\ntea"
_CHUNKED = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n3 ; a=b\r\nabc\r\n0\r\n\r\n"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example([_GET, _BREW, _GET], [])
@example([_GET, _CHUNKED, _GET], [40, 41, 90])
@example([_GET, _BREW, _CHUNKED], [1, 2, 3, 100])
@given(st.lists(request(), min_size=1, max_size=6), st.lists(st.integers(min_value=1, max_value=400), max_size=6))
def test_any_cut_of_a_burst_gets_the_same_answers(reqs: list[bytes], cuts: list[int]) -> None:
    burst = b"".join(reqs)
    whole = serve_pieces([burst])
    points = sorted({c % len(burst) for c in cuts} - {0})
    pieces = [burst[a:b] for a, b in zip([0, *points], [*points, len(burst)], strict=True)]
    assert serve_pieces(pieces) == whole
    assert whole.count(b"HTTP/1.1 200 OK") == len(reqs)
