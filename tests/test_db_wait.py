"""gofer.patch_db.wait_fd: waiting on an fd a C library owns, one or both ways.

Exercised with plain socketpairs on both pollers; the real drivers are in
test_db_pg.py.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

import gofer
from gofer.patch_db import BOTH, READ, WRITE, wait_fd


def _filled() -> tuple[socket.socket, socket.socket]:
    """A pair whose first end has a full send buffer and nothing to read."""
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    return a, b


def test_read_write_and_timeout(vrun: Callable[..., Any]) -> None:
    a, b = socket.socketpair()
    with a, b:

        def main() -> None:
            assert wait_fd(a.fileno(), WRITE) == WRITE  # room in the buffer: at once
            with pytest.raises(TimeoutError):
                wait_fd(a.fileno(), READ, timeout=5)
            gofer.go(lambda: (gofer.sleep(1), b.send(b"hi")))
            assert wait_fd(a.fileno(), READ) == READ
            assert a.recv(10) == b"hi"

        vrun(main)


def test_both_wakes_once_for_either_direction(vrun: Callable[..., Any]) -> None:
    a, b = _filled()
    with a, b:

        def main() -> None:
            with pytest.raises(TimeoutError):
                wait_fd(a.fileno(), BOTH, timeout=2)
            gofer.go(lambda: (gofer.sleep(1), b.send(b"r")))
            assert wait_fd(a.fileno(), BOTH) == READ  # readable, still not writable
            assert a.recv(1) == b"r"

            # now drain the peer: the first end becomes writable
            def drain() -> None:
                gofer.sleep(1)
                b.setblocking(False)
                try:
                    while b.recv(1 << 20):
                        pass
                except BlockingIOError:
                    pass

            gofer.go(drain)
            assert wait_fd(a.fileno(), BOTH) == WRITE
            assert gofer.get_hub().poller.nwaiters == 0  # no slot left behind

        vrun(main)


def test_both_cancelled_leaves_no_waiter(vrun: Callable[..., Any]) -> None:
    a, b = _filled()
    with a, b:

        def main() -> None:
            t = gofer.go(wait_fd, a.fileno(), BOTH)
            gofer.sleep(1)
            t.cancel()
            with pytest.raises(gofer.Cancelled):
                t.join()
            assert gofer.get_hub().poller.nwaiters == 0
            # the fd can be waited on again at once
            b.send(b"z")
            assert wait_fd(a.fileno(), BOTH, timeout=5) == READ

        vrun(main)


def test_bad_mode() -> None:
    a, b = socket.socketpair()
    with a, b, pytest.raises(ValueError, match="mode"):
        gofer.run(wait_fd, a.fileno(), 7)


@pytest.mark.poller("epoll")  # only epoll sees a registration taken over
def test_both_raises_when_the_fd_is_taken_over_while_waiting(vrun: Callable[..., Any]) -> None:
    # The fd's registration is replaced under the wait (its number reused):
    # the waiter gets the error instead of waiting forever, and the hub goes on.
    a, b = _filled()
    with a, b:

        def main() -> None:
            t = gofer.go(wait_fd, a.fileno(), BOTH)
            gofer.sleep(1)
            poller = gofer.get_hub().poller
            st = poller.register(a.fileno())  # takes the fd over: the old waiters get EBADF
            with pytest.raises(OSError, match="reused"):
                t.join()
            poller.unregister(st, None)
            assert poller.nwaiters == 0

        vrun(main)
