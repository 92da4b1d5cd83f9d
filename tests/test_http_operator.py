"""Limits an operator expects (issue 11, item 8): connection and in-progress caps, body rate.

All on the virtual clock: a server and raw clients in one hub.
"""

from __future__ import annotations

from typing import Any

import gofer
import gofer.socket as gsocket
from gofer import http
from gofer.http.server import Server, listen
from test_http_limits import exchange_in_hub, statuses

H = b"Host: x\r\n"


def read_all(c: Any) -> bytes:
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


def read_response(c: Any) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"\n"):
        b = c.recv(65536)
        if not b:
            break
        data += b
    return data


def with_server(app: Any, limits: http.Limits, fn: Any) -> Any:
    def main() -> Any:
        lsock = listen(("127.0.0.1", 0))
        server = Server(app, limits=limits)
        t = gofer.go(server.serve_socket, lsock)
        try:
            return fn(lsock.getsockname())
        finally:
            server.shutdown(1)
            t.join()
            lsock.close()

    return gofer.testing.run(main)


def test_connections_over_the_cap_get_503_with_retry_after() -> None:
    lim = http.Limits(max_connections=2, retry_after=7)

    def clients(addr: Any) -> tuple[bytes, bytes, bytes]:
        c1 = gsocket.create_connection(addr)
        c2 = gsocket.create_connection(addr)
        gofer.sleep(0.1)  # both accepted
        with gsocket.create_connection(addr) as c3:
            c3.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
            over = read_all(c3)  # answered, then closed
        c1.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        first = read_response(c1)
        c2.close()
        gofer.sleep(0.1)
        with gsocket.create_connection(addr) as c4:  # room again
            c4.sendall(b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
            again = read_all(c4)
        c1.close()
        return over, first, again

    over, first, again = with_server(lambda req: b"ok", lim, clients)
    assert statuses(over) == [503]
    assert b"Retry-After: 7\r\n" in over and b"Connection: close\r\n" in over
    assert statuses(first) == [200]
    assert statuses(again) == [200]


def test_requests_over_the_in_progress_cap_get_503() -> None:
    lim = http.Limits(max_in_progress=1, keepalive_timeout=100)

    def app(req: http.Request) -> bytes:
        if req.path == "/slow":
            gofer.sleep(5)
        return b"done"

    def clients(addr: Any) -> tuple[bytes, bytes, bytes]:
        slow = gsocket.create_connection(addr)
        slow.sendall(b"GET /slow HTTP/1.1\r\n" + H + b"\r\n")
        gofer.sleep(1)  # /slow is in the application
        with gsocket.create_connection(addr) as c:
            c.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
            busy = read_response(c)
            gofer.sleep(5)  # /slow is done
            c.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")  # the same connection: kept alive
            later = read_response(c)
        done = read_response(slow)
        slow.close()
        return busy, later, done

    busy, later, done = with_server(app, lim, clients)
    assert statuses(busy) == [503] and b"Retry-After: 1\r\n" in busy
    assert b"Connection: close" not in busy
    assert statuses(later) == [200]
    assert statuses(done) == [200]


def test_a_body_trickling_below_the_minimum_rate_is_cut_with_408() -> None:
    # One body byte a second: cut once it has waited header_timeout (10 s), not after 1000 s.
    lim = http.Limits(min_body_rate=64, read_timeout=60, keepalive_timeout=100)
    pieces = [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1000\r\n\r\n"] + [b"x"] * 1000

    def main() -> tuple[bytes, float]:
        t0 = gofer.get_hub().now()
        out = exchange_in_hub(pieces, lim, pause=1.0)
        return out, gofer.get_hub().now() - t0

    out, elapsed = gofer.testing.run(main)
    assert statuses(out) == [408]
    assert elapsed < 30  # virtual seconds: the minimum rate cut it, the 1000 s body never finished


def test_many_trickling_bodies_are_all_cut() -> None:
    lim = http.Limits(min_body_rate=64, keepalive_timeout=100)

    def main() -> list[bytes]:
        lsock = listen(("127.0.0.1", 0))
        server = Server(lambda req: req.body(), limits=lim)
        t = gofer.go(server.serve_socket, lsock)

        def one() -> bytes:
            with gsocket.create_connection(lsock.getsockname()) as c:
                c.sendall(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 100000\r\n\r\n")
                try:
                    for _ in range(1000):
                        c.sendall(b"x")
                        gofer.sleep(1)
                except OSError:
                    pass
                return read_all(c)

        try:
            tasks = [gofer.go(one) for _ in range(50)]
            return [task.join() for task in tasks]
        finally:
            server.shutdown(1)
            t.join()
            lsock.close()

    results = gofer.testing.run(main)
    assert all(statuses(r) == [408] for r in results)


def test_body_timeout_bounds_a_whole_body() -> None:
    lim = http.Limits(body_timeout=3, min_body_rate=None, keepalive_timeout=100)
    pieces = [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n"] + [b"x"] * 10

    def main() -> tuple[bytes, float]:
        t0 = gofer.get_hub().now()
        out = exchange_in_hub(pieces, lim, pause=1.0)
        return out, gofer.get_hub().now() - t0

    out, elapsed = gofer.testing.run(main)
    assert statuses(out) == [408]
    assert elapsed < 10


def test_a_body_at_a_normal_rate_is_not_cut() -> None:
    lim = http.Limits(min_body_rate=64, keepalive_timeout=100)
    pieces = [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3000\r\nConnection: close\r\n\r\n"] + [b"x" * 100] * 30
    out = gofer.testing.run(lambda: exchange_in_hub(pieces, lim, pause=1.0))  # 100 bytes/s for 30 s
    assert statuses(out) == [200]


def test_limits_are_validated() -> None:
    import pytest

    for bad in ({"max_connections": 0}, {"max_in_progress": -1}, {"min_body_rate": 0}, {"body_timeout": -1.0},
                {"retry_after": -1}, {"max_field_size": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            http.Limits(**bad)  # type: ignore[arg-type]
