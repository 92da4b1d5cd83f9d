"""Idle keep-alive connections hold no coroutine: parked on their fd (issue 11 item 6).

A server and raw clients share one hub on the virtual clock, so the sweep
ticks take no real time. Each test looks at the connection's state
(``handle``: parked on the fd; ``task``: its coroutine) and at what the
client gets back.
"""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import gofer
import gofer.testing
from gofer import http
from gofer import socket as gsocket
from gofer.http import _conn
from gofer.http import server as server_mod
from gofer.http.server import Server, listen

REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def hello(req: http.Request) -> bytes:
    return b"hello " + req.target


@contextmanager
def serving(limits: http.Limits | None = None) -> Iterator[tuple[Server, int]]:
    lsock = listen(("127.0.0.1", 0))
    server = Server(hello, limits=limits)
    t = gofer.go(server.serve_socket, lsock)
    try:
        yield server, lsock.getsockname()[1]
    finally:
        server.shutdown(1)
        t.join()
        lsock.close()


def read_response(c: Any) -> bytes:
    """One whole response (the test app's bodies are short, Content-Length framed)."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        m = re.search(rb"Content-Length: (\d+)", data[:end]) if end >= 0 else None
        if m and len(data) >= end + 4 + int(m.group(1)):
            return data
        b = c.recv(65536)
        if not b:
            return data
        data += b


def conn_of(server: Server) -> Any:
    (c,) = server.conns
    return c


def parked(c: Any) -> bool:
    return c.handle is not None and c.task is None


def test_idle_connection_gives_its_coroutine_back_and_serves_the_next_request() -> None:
    def main() -> None:
        with serving() as (server, port), gsocket.create_connection(("127.0.0.1", port)) as c:
            for i in range(3):
                c.sendall(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                assert read_response(c).endswith(b"hello /r%d" % i)
                gofer.sleep(3 * server.tick)  # idle for whole sweeps
                conn = conn_of(server)
                assert parked(conn)
            assert server.stats.requests == 3 and server.stats.connections == 1

    gofer.testing.run(main)


def test_parked_connection_holds_no_task() -> None:
    def main() -> int:
        with serving() as (server, port), gsocket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(REQ)
            read_response(c)
            before = len(gofer.get_hub().tasks)
            gofer.sleep(3 * server.tick)
            assert parked(conn_of(server))
            return before - len(gofer.get_hub().tasks)

    assert gofer.testing.run(main) == 1  # the connection's coroutine is gone


def test_pipelined_burst_on_a_parked_connection() -> None:
    def main() -> bytes:
        with serving() as (server, port), gsocket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(REQ)
            read_response(c)
            gofer.sleep(3 * server.tick)
            assert parked(conn_of(server))
            c.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
            out = b""
            while out.count(b"HTTP/1.1 200") < 2 or not out.endswith(b"hello /b"):
                out += c.recv(65536)
            return out

    out = gofer.testing.run(main)
    assert out.index(b"hello /a") < out.index(b"hello /b")


def test_keepalive_timeout_closes_a_parked_connection() -> None:
    lim = http.Limits(keepalive_timeout=5)

    def main() -> tuple[bytes, float, int]:
        with serving(lim) as (server, port), gsocket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(REQ)
            read_response(c)
            t0 = gofer.get_hub().now()
            gofer.sleep(2)
            assert parked(conn_of(server))
            rest = c.recv(100)  # the server closes it: b""
            return rest, gofer.get_hub().now() - t0, len(server.conns)

    rest, elapsed, left = gofer.testing.run(main)
    assert rest == b"" and left == 0
    assert 5 <= elapsed <= 5 * (1 + 3 / 8)


def test_client_close_of_a_parked_connection_is_noticed() -> None:
    def main() -> int:
        with serving() as (server, port):
            c = gsocket.create_connection(("127.0.0.1", port))
            c.sendall(REQ)
            read_response(c)
            gofer.sleep(3 * server.tick)
            assert parked(conn_of(server))
            c.close()
            for _ in range(50):
                if not server.conns:
                    break
                gofer.sleep(0.01)
            return len(server.conns)

    assert gofer.testing.run(main) == 0


def test_many_connections_park_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_conn, "_PARK_NOW", 4)

    def main() -> None:
        with serving() as (server, port):
            cs = [gsocket.create_connection(("127.0.0.1", port)) for _ in range(10)]
            for c in cs:
                c.sendall(REQ)
                read_response(c)
            gofer.sleep(0.01)  # less than a tick: no sweep has run
            assert sum(parked(x) for x in server.conns) >= 10 - 4
            for c in cs:  # and they still serve
                c.sendall(REQ)
                assert read_response(c).endswith(b"hello /")
            for c in cs:
                c.close()

    gofer.testing.run(main)


def test_shutdown_closes_parked_connections_and_serves_one_on_its_way() -> None:
    def main() -> tuple[bytes, bytes, float]:
        lsock = listen(("127.0.0.1", 0))
        port = lsock.getsockname()[1]
        server = Server(hello)
        t = gofer.go(server.serve_socket, lsock)
        a = gsocket.create_connection(("127.0.0.1", port))
        b = gsocket.create_connection(("127.0.0.1", port))
        for c in (a, b):
            c.sendall(REQ)
            read_response(c)
        gofer.sleep(3 * server.tick)
        assert all(parked(x) for x in server.conns) and len(server.conns) == 2
        hub = gofer.get_hub()
        t0 = hub.now()
        stopper = gofer.go(server.shutdown, 30)
        gofer.sleep(0.1)
        a.sendall(REQ)  # arrives within the drain window: answered, with Connection: close
        got_a = read_response(a)
        stopper.join()
        t.join()
        lsock.close()
        rest_b = b.recv(100)
        a.close()
        b.close()
        return got_a, rest_b, hub.now() - t0

    got_a, rest_b, elapsed = gofer.testing.run(main)
    assert got_a.startswith(b"HTTP/1.1 200") and b"Connection: close" in got_a
    assert rest_b == b""
    assert elapsed < 5  # the idle one went at the drain window, not at the grace


def test_handle_connection_keeps_its_coroutine() -> None:
    # handle_connection serves in the caller's coroutine until the connection
    # ends, so it never parks: only serve_socket's own connections do.
    def main() -> None:
        lsock = listen(("127.0.0.1", 0))
        server = Server(hello)
        c = gsocket.create_connection(("127.0.0.1", lsock.getsockname()[1]))
        while True:
            try:
                s, addr = lsock.accept()
                break
            except BlockingIOError:
                gofer.sleep(0.001)
        t = gofer.go(server.handle_connection, s, addr)
        c.sendall(REQ)
        read_response(c)
        gofer.sleep(3 * server.tick)
        assert conn_of(server).handle is None and not t.done()
        c.close()
        t.join()
        server.shutdown(1)
        lsock.close()

    gofer.testing.run(main)


_KINDS = ("ServerConnection", "IoState", "HttpRequestParser", "socket")


def _alive() -> dict[str, int]:
    """Objects of _KINDS that exist, reachable or not (no gc run)."""
    n = dict.fromkeys(_KINDS, 0)
    for o in gc.get_objects():
        k = type(o).__name__
        if k in n:
            n[k] += 1
    return n


def test_closed_connections_leave_nothing_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    # Some park at once (above _PARK_NOW), the first ones after a sweep, a few
    # are cut by the header timeout in their coroutine; once the clients
    # have gone, no connection's state may stay, and without waiting for the
    # cyclic gc (an idle server may run none for a long time).
    monkeypatch.setattr(_conn, "_PARK_NOW", 50)

    def main() -> tuple[int, dict[str, int]]:
        with serving(http.Limits(header_timeout=2.0)) as (server, port):
            gofer.sleep(0.01)  # the accept loop has started
            gc.collect()
            before = _alive()
            cs = [gsocket.create_connection(("127.0.0.1", port)) for _ in range(300)]
            for c in cs:
                c.sendall(REQ)
                read_response(c)
            slow = [gsocket.create_connection(("127.0.0.1", port)) for _ in range(5)]
            for c in slow:
                c.sendall(b"GET / HTTP/1.1\r\nHo")
            gofer.sleep(3 * server.tick)
            n_parked = sum(parked(x) for x in server.conns)
            gc.disable()
            try:
                for c in cs:
                    c.close()
                gofer.sleep(4.0)  # past the header timeout: the slow ones are cut (408)
                for c in slow:
                    assert read_response(c).startswith(b"HTTP/1.1 408")
                    c.close()
                del c, cs, slow
                gofer.sleep(3 * server.tick)
                assert not server.conns
                left = {k: v - before[k] for k, v in _alive().items()}
            finally:
                gc.enable()
        return n_parked, left

    n_parked, left = gofer.testing.run(main)
    assert n_parked == 300
    assert left == dict.fromkeys(_KINDS, 0)


def test_idle_connection_holds_no_buffer_of_its_own() -> None:
    def main() -> None:
        with serving() as (server, port), gsocket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(REQ + REQ)  # pipelined: both answered from one read
            data = b""
            while data.count(b"hello /") < 2:
                data += c.recv(65536)
            gofer.sleep(3 * server.tick)
            conn = conn_of(server)
            assert parked(conn)
            assert conn.buf is _conn._thread_buffer()[0]  # the thread's shared receive buffer
            assert conn.out == [] and conn.queue == [] and conn.partial is None and conn.cur is None

    gofer.testing.run(main)


def _crowd_comes_and_goes(monkeypatch: pytest.MonkeyPatch, n: int) -> dict[str, int]:
    """``n`` keep-alive clients, one request each, idle, then all gone: what is left of them."""
    monkeypatch.setattr(server_mod, "TRIM_FROM", n // 2)  # a crowd, at a size a test can open
    monkeypatch.setattr(_conn, "_PARK_NOW", n // 10)

    def main() -> dict[str, int]:
        with serving() as (server, port):
            with gsocket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(REQ)
                read_response(c)
            gofer.sleep(3 * server.tick)
            hub = gofer.get_hub()
            gc.collect()
            blocks0 = sys.getallocatedblocks()
            cs = [gsocket.create_connection(("127.0.0.1", port)) for _ in range(n)]
            for c in cs:
                c.sendall(REQ)
                read_response(c)
            gofer.sleep(3 * server.tick)  # all idle: parked on their fds
            peak = sys.getallocatedblocks() - blocks0
            for c in cs:
                c.close()
            del c, cs
            gofer.sleep(3 * server.tick)  # the sweep sees the crowd gone
            assert not server.conns
            fds = getattr(hub.poller, "_fds", None) or hub.poller._live
            return {
                "peak": peak,
                "left": sys.getallocatedblocks() - blocks0,
                "idle_workers": len(hub.idle_workers),
                # Beyond what a copy at the present size takes: a table that kept its peak.
                "conns_table": sys.getsizeof(server.conns) - sys.getsizeof(set(server.conns)),
                "fds_table": sys.getsizeof(fds) - sys.getsizeof(type(fds)(fds)),
            }

    return gofer.testing.run(main)


def test_a_crowd_that_has_gone_leaves_nothing_that_pins_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each object alive in a 1 MiB pymalloc arena keeps the whole arena, so
    # what the crowd left alive keeps its memory: the hub's idle workers, the
    # grown tables, free lists. Counted in allocated blocks (deterministic:
    # no RSS, no timing).
    got = _crowd_comes_and_goes(monkeypatch, 400)
    assert got["peak"] > 400 * 10  # the crowd was there
    assert got["idle_workers"] == 0
    assert got["conns_table"] == 0 and got["fds_table"] == 0
    assert got["left"] < 150, got
