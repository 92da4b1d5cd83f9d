"""Registrations kept across waits (gofer._fdwait): one per database connection's fd.

Exercised with socketpairs and stand-in connection objects; the drivers'
use of them is in test_db_pg.py. The poller is edge-triggered and the bytes
are read by someone else (libpq), so the cases that matter are bytes left
unread after their edge was seen, an edge that comes while nobody waits,
and a registration outliving its connection (freed, or its fd number
reused by another).
"""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import gofer
from gofer import _fdwait
from gofer._fdwait import BOTH, READ, WRITE, keep, wait_kept

pytestmark = pytest.mark.poller("epoll")  # the level-triggered poller keeps nothing (below)


class Conn:
    """Stands in for a driver's connection: what a registration is kept for."""


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)  # a wait that ended too early fails the test, not hangs it
    with a, b:
        yield a, b


def _fds() -> dict[int, Any]:
    return _fdwait._kept_fds()


def test_one_registration_across_waits(vrun: Callable[..., Any], pair: Any) -> None:
    a, b = pair
    owner = Conn()

    def main() -> None:
        k = keep(a.fileno(), owner)
        assert k is not None and k() is owner
        for _ in range(5):
            gofer.go(lambda: (gofer.sleep(1), b.send(b"x")))
            assert wait_kept(k, READ, look=False) == READ
            assert a.recv(10) == b"x"
            assert keep(a.fileno(), owner) is k  # the same registration every time
        assert not k.st.closed
        assert gofer.get_hub().poller.nwaiters == 0

    vrun(main)


def test_dropped_when_the_connection_is_freed(vrun: Callable[..., Any], pair: Any) -> None:
    a, _ = pair

    def main() -> None:
        owner = Conn()
        k = keep(a.fileno(), owner)
        assert k is not None
        st = k.st
        poller = gofer.get_hub().poller
        assert poller._fds.get(a.fileno()) is st  # type: ignore[attr-defined]
        del owner, k
        gc.collect()
        assert st.closed  # unregistered from the hub's poller
        assert poller._fds.get(a.fileno()) is None  # type: ignore[attr-defined]
        assert a.fileno() not in _fds()

    vrun(main)


def test_an_fd_number_reused_by_another_connection(vrun: Callable[..., Any]) -> None:
    # The first connection's socket closes and a new one gets its number
    # while the first connection object is still alive: the registration,
    # which the kernel dropped with the old socket, must not be used.
    first = Conn()

    def main() -> None:
        a, b = socket.socketpair()
        fd = a.fileno()
        k1 = keep(fd, first)
        assert k1 is not None
        a.close()
        b.close()
        c, d = socket.socketpair()
        with c, d:
            assert c.fileno() == fd or d.fileno() == fd
            mine, peer = (c, d) if c.fileno() == fd else (d, c)
            second = Conn()
            k2 = keep(fd, second)
            assert k2 is not None and k2 is not k1 and k1.st.closed
            gofer.go(lambda: (gofer.sleep(1), peer.send(b"y")))
            assert wait_kept(k2, READ, timeout=5) == READ  # a fresh registration: woken
            assert mine.recv(1) == b"y"

    vrun(main)


def test_a_new_server_process_on_the_same_fd_makes_a_new_registration(vrun: Callable[..., Any], pair: Any) -> None:
    a, _ = pair
    owner = Conn()

    def main() -> None:
        k1 = keep(a.fileno(), owner, tag=101)
        k2 = keep(a.fileno(), owner, tag=202)  # psycopg 3 passes the backend pid
        assert k1 is not None and k2 is not None and k2 is not k1 and k1.st.closed

    vrun(main)


def test_bytes_left_after_their_edge_end_the_wait_at_once(vrun: Callable[..., Any], pair: Any) -> None:
    # libpq may read part of what has arrived: no new edge will come for the
    # rest, so a wait that looks first (the default) must not park.
    a, b = pair
    owner = Conn()

    def main() -> None:
        k = keep(a.fileno(), owner)
        assert k is not None
        gofer.go(lambda: (gofer.sleep(1), b.send(b"z" * 4096)))
        assert wait_kept(k, READ) == READ
        assert a.recv(100) == b"z" * 100  # 3,996 bytes left
        t0 = gofer.get_hub().now()
        assert wait_kept(k, READ, timeout=5) == READ
        assert gofer.get_hub().now() == t0  # did not park
        a.recv(8192)

    vrun(main)


def test_an_edge_while_nobody_waits_ends_the_next_wait(vrun: Callable[..., Any], pair: Any) -> None:
    a, b = pair
    owner = Conn()

    def main() -> None:
        k = keep(a.fileno(), owner)
        assert k is not None
        b.send(b"w")
        gofer.sleep(1)  # the hub sees the edge: nobody waits
        t0 = gofer.get_hub().now()
        assert wait_kept(k, READ, look=False, timeout=5) == READ  # even without looking
        assert gofer.get_hub().now() == t0
        assert a.recv(1) == b"w"
        with pytest.raises(TimeoutError):  # the edge was used up: now it parks
            wait_kept(k, READ, look=False, timeout=2)

    vrun(main)


def test_timeout_and_cancel_leave_no_waiter(vrun: Callable[..., Any], pair: Any) -> None:
    a, b = pair
    owner = Conn()

    def main() -> None:
        k = keep(a.fileno(), owner)
        assert k is not None
        poller = gofer.get_hub().poller
        with pytest.raises(TimeoutError):
            wait_kept(k, READ, timeout=3)
        assert poller.nwaiters == 0
        t = gofer.go(wait_kept, k, READ)
        gofer.sleep(1)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert poller.nwaiters == 0 and not k.st.closed
        gofer.go(lambda: (gofer.sleep(1), b.send(b"v")))
        assert wait_kept(k, READ, timeout=5) == READ  # still usable
        assert a.recv(1) == b"v"

    vrun(main)


def test_write_and_either_way(vrun: Callable[..., Any]) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    owner = Conn()

    def main() -> None:
        k = keep(a.fileno(), owner)
        assert k is not None
        with pytest.raises(TimeoutError):
            wait_kept(k, WRITE, timeout=2)
        with pytest.raises(TimeoutError):
            wait_kept(k, BOTH, timeout=2)
        gofer.go(lambda: (gofer.sleep(1), b.send(b"r")))
        assert wait_kept(k, BOTH, timeout=5) == READ
        assert a.recv(1) == b"r"

        def drain() -> None:
            gofer.sleep(1)
            b.setblocking(False)
            try:
                while b.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass

        gofer.go(drain)
        assert wait_kept(k, WRITE, timeout=5) == WRITE
        assert gofer.get_hub().poller.nwaiters == 0

    with a, b:
        vrun(main)


def test_a_closed_hub_closes_its_registrations(pair: Any) -> None:
    a, b = pair
    owner = Conn()
    first = gofer.run(keep, a.fileno(), owner)
    assert first is not None and first.st.closed  # closed with its hub

    def main() -> None:
        k = keep(a.fileno(), owner)
        assert k is not None and k is not first and not k.st.closed
        b.send(b"u")
        assert wait_kept(k, READ, timeout=5) == READ

    gofer.run(main)


@pytest.mark.poller("select")
def test_the_level_triggered_poller_keeps_nothing(vrun: Callable[..., Any], pair: Any) -> None:
    a, _ = pair
    assert vrun(keep, a.fileno(), Conn()) is None
