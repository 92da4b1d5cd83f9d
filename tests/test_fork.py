"""fork(): a child neither breaks its parent's hub nor shares its events.

A forked child shares the parent's epoll instance and wake-up eventfd. The
hubs of threads that do not survive the fork are dropped in the child: they
must not take the parent's fds out of that shared epoll set (the parent's
waiter would never be woken). The hub of the thread that forked keeps
working in the child on an epoll instance of its own.
"""

from __future__ import annotations

import os
import threading

import pytest

import gofer
from gofer import socket

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def _wait_child(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_forked_by_another_thread_leaves_the_parents_waiters_alone():
    def main() -> bytes:
        a, b = socket.socketpair()
        try:
            t = gofer.go(a.recv, 1)
            gofer.yield_now()  # parked in recv: a is in the hub's epoll set

            codes: list[int] = []

            def forker() -> None:
                pid = os.fork()
                if pid == 0:  # the child: the main thread's hub is gone here
                    os._exit(0)
                codes.append(_wait_child(pid))

            th = threading.Thread(target=forker)
            th.start()
            th.join()
            assert codes == [0]
            b.sendall(b"x")
            return t.join(timeout=10)  # TimeoutError if the fd left the set
        finally:
            a.close()
            b.close()

    assert gofer.run(main) == b"x"


def test_the_forking_threads_hub_works_in_the_child_on_its_own():
    def main() -> tuple[bytes, int]:
        a, b = socket.socketpair()
        try:
            t = gofer.go(a.recv, 1)  # the parent's waiter, parked across the fork
            gofer.yield_now()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    c, d = socket.socketpair()
                    threading.Timer(0.05, d.sendall, (b"y",)).start()  # a wake-up from a thread
                    gofer.sleep(0.01)
                    ok = c.recv(1) == b"y"
                    done = threading.Event()
                    gofer.get_hub().call_threadsafe(done.set)
                    gofer.sleep(0.01)
                    code = 0 if ok and done.is_set() else 2
                finally:
                    os._exit(code)
            code = _wait_child(pid)
            b.sendall(b"x")
            return t.join(timeout=10), code
        finally:
            a.close()
            b.close()

    assert gofer.run(main) == (b"x", 0)
