"""Bad input: request smuggling, malformed heads, limits (414/431/413) and timeouts.

Each case runs a server and a raw client in one hub; the timeout cases run on
the virtual clock, so they take no real time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

import gofer
from gofer import http
from gofer import socket as gsocket
from gofer.http.server import Server, listen


def hello(req: http.Request) -> bytes:
    return b"hello " + req.body()


def exchange(
    data: bytes | list[bytes],
    limits: http.Limits | None = None,
    app: Callable[[http.Request], Any] = hello,
    pause: float = 0.0,
) -> bytes:
    """Run a server, send ``data`` (pieces ``pause`` s apart), return all it sent back."""
    pieces = [data] if isinstance(data, bytes) else data

    def main() -> bytes:
        lsock = listen(("127.0.0.1", 0))
        port = lsock.getsockname()[1]
        server = Server(app, limits=limits)
        t = gofer.go(server.serve_socket, lsock)
        try:
            with gsocket.create_connection(("127.0.0.1", port)) as c:
                try:
                    for p in pieces:
                        c.sendall(p)
                        if pause:
                            gofer.sleep(pause)
                except OSError:
                    pass  # the server may close before all is sent
                out = []
                while True:
                    try:
                        b = c.recv(65536)
                    except OSError:
                        break
                    if not b:
                        break
                    out.append(b)
                return b"".join(out)
        finally:
            server.shutdown(1)
            t.join()
            lsock.close()

    return gofer.testing.run(main)


def statuses(resp: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", resp)]


H = b"Host: x\r\n"


# -- smuggling -------------------------------------------------------------------------


def test_smuggling_cl_and_te_rejected() -> None:
    out = exchange(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n")
    assert statuses(out) == [400]


def test_smuggling_te_and_cl_rejected() -> None:
    out = exchange(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n")
    assert statuses(out) == [400]


def test_smuggling_duplicate_content_length_rejected() -> None:
    out = exchange(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    assert statuses(out) == [400]
    out = exchange(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1, 1\r\n\r\na")
    assert statuses(out) == [400]


def test_smuggling_bad_transfer_encodings_rejected() -> None:
    for te in (b"chunked, gzip", b"gzip", b"chunked\r\nTransfer-Encoding: chunked", b" chunked\x0b"):
        out = exchange(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: " + te + b"\r\n\r\n0\r\n\r\n")
        assert statuses(out) == [400], te


def test_smuggling_te_in_http10_rejected() -> None:
    out = exchange(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert statuses(out) == [400]


def test_bare_lf_rejected() -> None:
    assert statuses(exchange(b"GET / HTTP/1.1\n" + H + b"\n")) == [400]
    assert statuses(exchange(b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n")) == [400]


def test_obs_fold_rejected() -> None:
    assert statuses(exchange(b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n")) == [400]


def test_invalid_chunk_sizes_rejected() -> None:
    for size in (b"zz", b"-1", b"5 ", b"0x5", b"fffffffffffffffffffff", b""):
        out = exchange(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n")
        assert statuses(out) == [400], size
        assert out.count(b"HTTP/1.1") == 1


def test_missing_or_duplicate_host_rejected() -> None:
    assert statuses(exchange(b"GET / HTTP/1.1\r\n\r\n")) == [400]
    assert statuses(exchange(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")) == [400]
    assert statuses(exchange(b"GET / HTTP/1.0\r\n\r\n")) == [200]  # HTTP/1.0 needs none


def test_bad_version_and_method() -> None:
    assert statuses(exchange(b"GET / HTTP/2.0\r\n" + H + b"\r\n")) == [505]
    assert statuses(exchange(b"GET / HTTP/1.2\r\n" + H + b"\r\n")) == [200]  # as 1.1 (RFC 9112 §2.3)
    assert statuses(exchange(b"GET / HTTP/3.1\r\n" + H + b"\r\n")) == [505]
    assert statuses(exchange(b"GET / HTTP/0.9\r\n" + H + b"\r\n")) == [505]
    assert statuses(exchange(b"G@T / HTTP/1.1\r\n" + H + b"\r\n")) == [400]
    assert statuses(exchange(b"GET /a b HTTP/1.1\r\n" + H + b"\r\n")) == [400]
    assert statuses(exchange(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")) == [400]
    assert statuses(exchange(b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n")) == [400]


def test_good_requests_before_a_bad_one_are_answered() -> None:
    good = b"GET / HTTP/1.1\r\n" + H + b"\r\n"
    out = exchange(good + good + b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert statuses(out) == [200, 200, 400]
    assert out.rstrip().endswith(b"Bad Request") or b"Content-Length" in out.split(b"\r\n\r\n")[-2]


# -- limits ------------------------------------------------------------------------------


def test_414_uri_too_long() -> None:
    lim = http.Limits(max_request_line=100)
    assert statuses(exchange(b"GET /" + b"a" * 99 + b" HTTP/1.1\r\n" + H + b"\r\n", lim)) == [200]
    assert statuses(exchange(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n" + H + b"\r\n", lim)) == [414]
    # trickled in small pieces too
    req = b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n" + H + b"\r\n"
    assert statuses(exchange([req[i : i + 7] for i in range(0, len(req), 7)], lim, pause=0.001)) == [414]


def test_431_too_many_headers() -> None:
    lim = http.Limits(max_header_count=10)
    ok = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: y\r\n" % i for i in range(9)) + b"\r\n"
    bad = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: y\r\n" % i for i in range(10)) + b"\r\n"
    assert statuses(exchange(ok, lim)) == [200]
    assert statuses(exchange(bad, lim)) == [431]


def test_431_header_too_large() -> None:
    lim = http.Limits(max_header_size=2000)
    assert statuses(exchange(b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 1900 + b"\r\n\r\n", lim)) == [200]
    assert statuses(exchange(b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 2100 + b"\r\n\r\n", lim)) == [431]


def test_431_endless_header_is_cut_off() -> None:
    # A header value that never ends, sent in many pieces: the server must
    # stop buffering it (bounded memory), not wait for the end.
    lim = http.Limits(max_header_size=1024)
    pieces = [b"GET / HTTP/1.1\r\n" + H + b"X: "] + [b"v" * 8192] * 40
    assert statuses(exchange(pieces, lim, pause=0.001)) == [431]


def test_413_body_too_large() -> None:
    lim = http.Limits(max_body_size=10)
    assert statuses(exchange(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n0123456789", lim)) == [200]
    assert statuses(exchange(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\n01234567890", lim)) == [413]
    chunked = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n012345\r\n0\r\n\r\n"
    assert statuses(exchange(chunked, lim)) == [413]


def test_413_with_expect_gets_no_continue() -> None:
    lim = http.Limits(max_body_size=10)
    out = exchange(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n", lim)
    assert statuses(out) == [413]


def test_max_requests_per_connection() -> None:
    lim = http.Limits(max_requests_per_connection=2)
    req = b"GET / HTTP/1.1\r\n" + H + b"\r\n"
    out = exchange(req * 3, lim)
    assert statuses(out) == [200, 200]
    assert out.count(b"Connection: close") == 1


# -- timeouts (virtual clock) --------------------------------------------------------------


def test_idle_keepalive_timeout_closes() -> None:
    lim = http.Limits(keepalive_timeout=5)

    def main() -> tuple[bytes, float]:
        hub = gofer.get_hub()
        t0 = hub.now()
        out = exchange_in_hub([b"GET / HTTP/1.1\r\n" + H + b"\r\n"], lim, pause=0.0)
        return out, hub.now() - t0

    out, elapsed = gofer.testing.run(main)
    assert statuses(out) == [200]  # and then closed by the server: recv returned b""
    assert 5 <= elapsed <= 5 * (1 + 2 / 8)  # due, within two sweeps (tick = 5 s / 8)


def test_slowloris_header_timeout() -> None:
    # One byte per second forever: the header timeout (total, not per byte) ends it.
    lim = http.Limits(header_timeout=3, keepalive_timeout=100)
    pieces = [b"GET / HTTP/1.1\r\n" + H] + [b"X"] * 20

    def main() -> tuple[bytes, float]:
        hub = gofer.get_hub()
        t0 = hub.now()
        out = exchange_in_hub(pieces, lim, pause=1.0)
        return out, hub.now() - t0

    out, elapsed = gofer.testing.run(main)
    assert statuses(out) == [408]
    assert elapsed < 6


def test_slow_body_read_timeout() -> None:
    lim = http.Limits(read_timeout=2)
    pieces = [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n01", b"23"]
    out = exchange(pieces, lim, pause=5)
    assert statuses(out) == []  # the connection was dropped while waiting for the body


def exchange_in_hub(pieces: list[bytes], limits: http.Limits, pause: float) -> bytes:
    lsock = listen(("127.0.0.1", 0))
    server = Server(hello, limits=limits)
    t = gofer.go(server.serve_socket, lsock)
    try:
        with gsocket.create_connection(lsock.getsockname()) as c:
            try:
                for p in pieces:
                    c.sendall(p)
                    gofer.sleep(pause)
            except OSError:
                pass
            out = []
            while True:
                try:
                    b = c.recv(65536)
                except OSError:
                    break
                if not b:
                    break
                out.append(b)
            return b"".join(out)
    finally:
        server.shutdown(1)
        t.join()
        lsock.close()


@pytest.mark.parametrize("bad", [b"\r\n\r\n", b"GET\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"])
def test_garbage_gets_400_or_close(bad: bytes) -> None:
    out = exchange(bad)
    assert statuses(out) in ([], [400], [505])


def test_pipelining_client_that_never_reads_is_not_buffered() -> None:
    # A client pipelining requests without reading the responses must not
    # make the server buffer them: it sends as it goes, parks on the full
    # send buffer, and the write timeout ends the connection.
    lim = http.Limits(write_timeout=3, keepalive_timeout=100)
    big = b"x" * 50_000
    peak = 0

    def handler(req: http.Request) -> bytes:
        nonlocal peak
        peak = max(peak, sum(len(b) for b in req.conn.out))  # responses waiting to be sent
        return big

    def main() -> None:
        lsock = listen(("127.0.0.1", 0))
        server = Server(handler, limits=lim)
        t = gofer.go(server.serve_socket, lsock)
        c = gsocket.create_connection(lsock.getsockname())
        try:
            # 108 kB of requests in one go: the server reads full buffers
            # (about 2400 requests, 120 MB of responses) before it would park.
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4000)
            gofer.sleep(10)  # never read; the server gives up after 3 s
        finally:
            c.close()
            server.shutdown(1)
            t.join()
            lsock.close()

    gofer.testing.run(main)
    assert 0 < peak <= 40 * 50_100  # a few dozen responses at most, not thousands


def test_slow_clients_do_not_block_others() -> None:
    # 50 clients trickle a head byte by byte; a normal client is served at
    # once meanwhile, and the slow ones are cut off by the header timeout.
    lim = http.Limits(header_timeout=5)

    def main() -> tuple[float, list[bytes]]:
        hub = gofer.get_hub()
        lsock = listen(("127.0.0.1", 0))
        server = Server(hello, limits=lim)
        t = gofer.go(server.serve_socket, lsock)
        addr = lsock.getsockname()

        def slow() -> bytes:
            with gsocket.create_connection(addr) as c:
                try:
                    for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 100:
                        c.sendall(bytes([b]))
                        gofer.sleep(0.5)
                except OSError:
                    pass
                try:
                    return c.recv(1000)
                except OSError:
                    return b""

        with gofer.scope() as s:
            slow_tasks = [s.go(slow) for _ in range(50)]
            gofer.sleep(1)
            t0 = hub.now()
            with gsocket.create_connection(addr) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                fast = c.recv(1000)
            fast_time = hub.now() - t0
            assert fast.startswith(b"HTTP/1.1 200 OK")
        results = [task.result() for task in slow_tasks]
        server.shutdown(1)
        t.join()
        lsock.close()
        return fast_time, results

    fast_time, results = gofer.testing.run(main)
    assert fast_time < 0.1
    assert all(statuses(r) in ([408], []) for r in results)
    assert sum(statuses(r) == [408] for r in results) >= 40


def test_host_in_trailers_is_refused() -> None:
    # A "Host" trailer is refused (RFC 9110 §6.5.1); other trailers do not count for Host either.
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
    assert statuses(exchange(chunked + b"Host: y\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")) == [400]
    assert statuses(exchange(chunked + b"X-T: y\r\n\r\nGET / HTTP/1.1\r\n\r\n")) == [200, 400]
    assert statuses(exchange(chunked + b"X-T: y\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")) == [200, 200]
