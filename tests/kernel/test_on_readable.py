"""gofer._core.on_readable: a callback parked in an fd's read slot, on both pollers."""

from __future__ import annotations

import socket

import pytest

import gofer
from gofer._core import on_readable


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _drained(st, sock):
    """Read what is there and clear the flag, as the socket layer does."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass
    st.readable = False


def test_fires_once_when_data_arrives(pair):
    a, b = pair
    calls = []

    def main():
        hub = gofer.get_hub()
        st = hub.poller.register(a.fileno())
        _drained(st, a)
        h = on_readable(st, calls.append, "ready")
        assert st.rwaiter is h and hub.poller.nwaiters == 1
        gofer.sleep(0.01)
        assert calls == [] and h.pending
        b.send(b"x")
        b.send(b"y")
        for _ in range(20):
            gofer.sleep(0.005)
        assert calls == ["ready"]
        assert not h.pending and h.error is None
        assert hub.poller.nwaiters == 0 and st.rwaiter is None
        assert a.recv(10) == b"xy"
        hub.poller.unregister(st)

    gofer.run(main)


def test_fires_on_eof(pair):
    a, b = pair
    calls = []

    def main():
        st = gofer.get_hub().poller.register(a.fileno())
        _drained(st, a)
        h = on_readable(st, calls.append, 1)
        b.shutdown(socket.SHUT_WR)
        gofer.sleep(0.05)
        assert calls == [1] and h.error is None
        assert a.recv(10) == b""
        gofer.get_hub().poller.unregister(st)

    gofer.run(main)


def test_fires_on_close_with_the_error(pair):
    a, _b = pair
    seen = []

    def main():
        poller = gofer.get_hub().poller
        st = poller.register(a.fileno())
        _drained(st, a)
        h = on_readable(st, lambda: seen.append(h.error))
        poller.unregister(st, ConnectionAbortedError("closing it"))
        assert poller.nwaiters == 0
        gofer.sleep(0)
        assert len(seen) == 1 and isinstance(seen[0], ConnectionAbortedError)
        with pytest.raises(OSError, match="closed"):
            on_readable(st, seen.append)

    gofer.run(main)


def test_cancel_before_and_after_firing(pair):
    a, b = pair
    calls = []

    def main():
        poller = gofer.get_hub().poller
        st = poller.register(a.fileno())
        _drained(st, a)
        h = on_readable(st, calls.append, "no")
        assert h.cancel() is True
        assert h.cancel() is False
        assert st.rwaiter is None and poller.nwaiters == 0
        b.send(b"x")
        gofer.sleep(0.05)
        assert calls == []
        # Fired into the ready queue but not run yet: cancel still wins.
        _drained(st, a)
        h2 = on_readable(st, calls.append, "late")
        b.send(b"x")
        while st.rwaiter is h2:
            gofer.get_hub().poller.poll(0.01)
        assert h2.cancel() is True
        gofer.sleep(0.01)
        assert calls == []
        poller.unregister(st)

    gofer.run(main)


def test_flag_set_calls_at_once(pair):
    a, _b = pair
    calls = []

    def main():
        st = gofer.get_hub().poller.register(a.fileno())  # flags start optimistic
        h = on_readable(st, calls.append, "now")
        assert st.rwaiter is None
        gofer.sleep(0)
        assert calls == ["now"] and not h.pending
        gofer.get_hub().poller.unregister(st)

    gofer.run(main)


def test_slot_taken_is_an_error(pair):
    a, _b = pair

    def main():
        st = gofer.get_hub().poller.register(a.fileno())
        _drained(st, a)
        h = on_readable(st, print)
        with pytest.raises(RuntimeError, match="already waiting"):
            on_readable(st, print)
        with pytest.raises(RuntimeError, match="already waiting"):
            gofer._core.wait_readable(st)
        h.cancel()
        gofer.get_hub().poller.unregister(st)

    gofer.run(main)


def test_callback_may_start_a_coroutine(pair):
    a, b = pair

    def main():
        st = gofer.get_hub().poller.register(a.fileno())
        _drained(st, a)
        out = gofer.Chan(1)
        on_readable(st, gofer.go, lambda: out.send(a.recv(10)))
        b.send(b"req")
        got = out.recv()
        gofer.get_hub().poller.unregister(st)
        return got

    assert gofer.run(main) == b"req"


def test_registration_keeps_the_hub_polling_and_deadlock_after_cancel(pair):
    a, b = pair

    def main():
        st = gofer.get_hub().poller.register(a.fileno())
        _drained(st, a)
        done = gofer.Chan(1)
        on_readable(st, done.send, "woken")
        # The hub must wait on the fd (another thread sends), not report a deadlock.
        gofer.to_thread(b.send, b"x")
        assert done.recv() == "woken"
        h = on_readable(st, done.send, "never")
        _drained(st, a)
        h.cancel()
        try:
            done.recv()  # nothing can wake it now
        finally:
            gofer.get_hub().poller.unregister(st)

    with pytest.raises(gofer.Deadlock):
        gofer.run(main)
