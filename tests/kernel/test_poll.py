"""The pollers' contract, exercised on raw non-blocking socketpairs."""

from __future__ import annotations

import errno
import socket

import pytest

import gofer
from gofer._core import poller_name, wait_readable, wait_writable


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_poller_is_the_one_selected():
    def main():
        return gofer.get_hub().poller.name

    assert gofer.run(main) == poller_name()


def test_wait_readable_parks_until_data_arrives(pair):
    a, b = pair

    def reader():
        st = gofer.get_hub().poller.register(a.fileno())
        try:
            while True:
                if st.readable:
                    try:
                        return a.recv(100)
                    except BlockingIOError:
                        st.readable = False
                wait_readable(st)
        finally:
            gofer.get_hub().poller.unregister(st)

    def main():
        t = gofer.go(reader)
        gofer.sleep(0.02)
        assert not t.done()
        b.send(b"hello")
        return t.join()

    assert gofer.run(main) == b"hello"


def test_wait_writable_when_buffer_full(pair):
    a, b = pair

    def main():
        hub = gofer.get_hub()
        st = hub.poller.register(a.fileno())
        sent = 0
        try:
            while True:
                a.send(b"x" * 65536)
                sent += 65536
        except BlockingIOError:
            st.writable = False

        def drain():
            gofer.sleep(0.02)
            while True:
                try:
                    if not b.recv(1 << 20):
                        break
                except BlockingIOError:
                    break

        d = gofer.go(drain)
        wait_writable(st, timeout=5)
        d.join()
        hub.poller.unregister(st)
        return sent

    assert gofer.run(main) > 0


def test_wait_timeout_and_second_waiter_error(pair):
    a, _ = pair

    def main():
        hub = gofer.get_hub()
        st = hub.poller.register(a.fileno())
        st.readable = False
        t = gofer.go(wait_readable, st)
        gofer.yield_now()
        with pytest.raises(RuntimeError, match="already waiting to read"):
            wait_readable(st)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert st.rwaiter is None and hub.poller.nwaiters == 0
        with pytest.raises(TimeoutError):
            wait_readable(st, timeout=0.01)
        assert st.rwaiter is None and hub.poller.nwaiters == 0
        hub.poller.unregister(st)

    gofer.run(main)


def test_unregister_wakes_waiter_with_error(pair):
    a, _ = pair

    def main():
        hub = gofer.get_hub()
        st = hub.poller.register(a.fileno())
        st.readable = False
        t = gofer.go(wait_readable, st)
        gofer.yield_now()
        hub.poller.unregister(st, OSError(errno.EBADF, "closed"))
        with pytest.raises(OSError) as ei:
            t.join()
        assert ei.value.errno == errno.EBADF
        with pytest.raises(OSError):
            wait_readable(st)

    gofer.run(main)


def test_peer_close_makes_reader_ready(pair):
    a, b = pair

    def main():
        hub = gofer.get_hub()
        st = hub.poller.register(a.fileno())
        st.readable = False
        t = gofer.go(wait_readable, st)
        gofer.sleep(0.01)
        b.shutdown(socket.SHUT_WR)
        t.join()
        assert a.recv(10) == b""
        hub.poller.unregister(st)

    gofer.run(main)
