"""What CPython's test_socket found with gofer.socket (issue 8, items 4 and 5).

``MSG_DONTWAIT`` makes one call non-blocking on a blocking socket;
``sendto`` takes the stdlib's argument forms and raises its errors;
``setblocking``/``settimeout`` check the fd as the stdlib does; a constructor
that fails leaves nothing to report from ``__del__``. The scenarios run once
against the stdlib and once in a coroutine (``parity`` from test_socket.py);
a call that parked instead of raising is ended by a generous guard timeout,
and its ``TimeoutError`` differs from the stdlib's record.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
import tempfile
import threading
from typing import Any

import pytest

import gofer
from gofer import socket as gsocket
from test_socket import Rec, _record

DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
needs_dontwait = pytest.mark.skipif(not DONTWAIT, reason="no MSG_DONTWAIT on this platform")


def parity(scenario: Any) -> None:
    """The stdlib's record of ``scenario`` must equal gofer's, taken in a coroutine."""
    expected = _record(scenario, socket)

    def guarded() -> list[Any]:
        with gofer.timeout(10):  # a wrong park fails the test instead of hanging it
            return _record(scenario, gsocket)

    assert gofer.run(guarded) == expected


@needs_dontwait
def test_dontwait_reads_raise_at_once() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        with a, b:
            d = m.MSG_DONTWAIT
            rec(lambda: a.recv(1, d))
            rec(lambda: a.recv_into(bytearray(1), 1, d))
            rec(lambda: a.recvfrom(1, d))
            rec(lambda: a.recvfrom_into(bytearray(1), 1, d))
            rec(lambda: a.recvmsg(1, 0, d))
            rec(lambda: a.recvmsg_into([bytearray(1)], 0, d))
            b.sendall(b"xyz")
            rec(lambda: a.recv(1))  # a blocking read that finds data
            rec(lambda: a.recv(2, d))  # and what is left, without waiting
            rec(lambda: a.recv(1, d))
            rec(lambda: a.recv_into(bytearray(1), 0, d))

    parity(sc)


@needs_dontwait
def test_dontwait_reads_after_the_socket_waited() -> None:
    # Once registered with the hub with its "readable" flag cleared, a
    # MSG_DONTWAIT call must still try the system call instead of parking.
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        with a, b:
            a.settimeout(0.05)
            rec(lambda: a.recv(1))  # times out: the flag is now cleared
            a.settimeout(None)
            d = m.MSG_DONTWAIT
            rec(lambda: a.recv(1, d))
            rec(lambda: a.recv_into(bytearray(1), 1, d))
            rec(lambda: a.recvmsg(1, 0, d))
            b.sendall(b"ok")
            rec(lambda: a.recv(10, m.MSG_PEEK))
            rec(lambda: a.recv(10, d))

    parity(sc)


@needs_dontwait
def test_dontwait_writes_raise_once_the_buffer_is_full() -> None:
    def fill(call: Any) -> Any:
        for _ in range(10_000):  # a socket buffer is well under 640 MB
            call()
        return "never full"

    def sc(m: Any, rec: Rec) -> None:
        chunk = b"x" * 65536
        d = m.MSG_DONTWAIT
        for name in ("send", "sendall", "sendmsg"):
            a, b = m.socketpair(m.AF_UNIX, m.SOCK_STREAM)
            with a, b:
                calls = {
                    "send": lambda a=a: a.send(chunk, d),
                    "sendall": lambda a=a: a.sendall(chunk, d),
                    "sendmsg": lambda a=a: a.sendmsg([chunk], [], d),
                }
                rec(lambda call=calls[name]: fill(call))
        # sendto: a Unix datagram receiver's queue fills up (UDP would drop instead).
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rx")
            rx = m.socket(m.AF_UNIX, m.SOCK_DGRAM)
            tx = m.socket(m.AF_UNIX, m.SOCK_DGRAM)
            with rx, tx:
                rx.bind(path)
                rec(lambda: fill(lambda: tx.sendto(b"d" * 1024, d, path)))
                rec(lambda: fill(lambda: tx.sendmsg([b"d" * 1024], [], d, path)))

    parity(sc)


@needs_dontwait
def test_dontwait_datagram_send_and_recvfrom() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a = m.socket(m.AF_INET, m.SOCK_DGRAM)
        b = m.socket(m.AF_INET, m.SOCK_DGRAM)
        with a, b:
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            d = m.MSG_DONTWAIT
            rec(lambda: a.recvfrom(10, d))
            rec(lambda: b.sendto(b"dg", d, a.getsockname()))
            rec(lambda: a.recvfrom(10, d)[0])
            rec(lambda: a.recvfrom(10, d))

    parity(sc)


def test_sendto_argument_errors() -> None:
    def sc(m: Any, rec: Rec) -> None:
        s = m.socket(m.AF_INET, m.SOCK_DGRAM)
        with s:
            s.bind(("127.0.0.1", 0))
            name = s.getsockname()
            rec(lambda: s.sendto("\u2620", name))
            rec(lambda: s.sendto(5j, 0, name))
            rec(lambda: s.sendto(b"foo", None))
            rec(lambda: s.sendto(b"foo", 0, None))
            rec(lambda: type(_catch(lambda: s.sendto(b"foo", "bar", name))).__name__)
            rec(lambda: type(_catch(lambda: s.sendto(b"foo", None, None))).__name__)
            rec(lambda: s.sendto(b"foo"))
            rec(lambda: s.sendto(b"foo", 0, name, 4))
            rec(lambda: s.sendto(b"ok", 0, name))
            rec(lambda: s.recvfrom(10)[0])

    parity(sc)


def _catch(fn: Any) -> BaseException | None:
    # Only the exception's type is compared where the messages differ in wording.
    try:
        fn()
    except Exception as exc:
        return exc
    return None


def test_setblocking_and_settimeout_check_the_fd() -> None:
    def sc(m: Any, rec: Rec) -> None:
        s = m.socket()
        s.close()
        rec(lambda: s.setblocking(True))
        rec(lambda: s.setblocking(False))
        rec(lambda: s.settimeout(1.0))
        rec(lambda: s.settimeout(-1))  # the value is checked first
        # An fd closed behind the socket's back (test_socket's test_setblocking_invalidfd).
        s0 = m.socket()
        s1 = m.socket(m.AF_INET, m.SOCK_STREAM, 0, s0.fileno())
        s0.close()
        rec(lambda: s1.setblocking(False))
        rec(lambda: s1.settimeout(None))
        s1.detach()

    parity(sc)


def test_failed_constructor_reports_nothing_from_del(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    r, w = os.pipe()
    os.close(r)
    os.close(w)  # a closed fd number: the constructor fails with EBADF
    with pytest.raises(OSError):
        gsocket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=r)
    with pytest.raises(OSError):
        gsocket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=999_999)
    with pytest.raises(OSError):
        gsocket.socket(12345, socket.SOCK_STREAM)  # no such family
    gc.collect()
    assert [(h.exc_type, h.exc_value) for h in seen] == []


def test_the_fd_is_non_blocking_underneath() -> None:
    # By design (docs/net.md): the logical timeout lives in Python.
    s = gsocket.socket()
    with s:
        assert s.gettimeout() is None and s.getblocking()
        assert not os.get_blocking(s.fileno())
        s.setblocking(True)
        s.settimeout(5)
        assert not os.get_blocking(s.fileno())
    assert gsocket.SocketType is gsocket.socket


def test_one_shot_iterables_survive_a_park() -> None:
    # recvmsg_into and sendmsg take any iterable (test_socket's
    # testRecvmsgIntoGenerator): a call that parks and retries must not find
    # the generator used up.
    def main() -> None:
        a, b = gsocket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with a, b:

            def later() -> None:
                gofer.sleep(0.01)
                b.send(b"datagram")

            t = gofer.go(later)
            buf = bytearray(8)
            n, _anc, _flags, _addr = a.recvmsg_into(x for x in [buf])
            assert (n, bytes(buf)) == (8, b"datagram")
            t.join()

        a, b = gsocket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with a, b:
            a.setblocking(False)
            try:
                while True:
                    a.send(b"f" * 65536)
            except BlockingIOError:
                pass  # the send buffer is full: the next send parks
            a.setblocking(True)

            def drain() -> int:
                total = 0
                while data := b.recv(65536):
                    total += len(data)
                return total

            r = gofer.go(drain)
            assert a.sendmsg(x for x in [b"tail"]) == 4
            assert a.sendmsg([b"ok"], (x for x in [])) == 2
            a.shutdown(socket.SHUT_WR)
            assert r.join() > 6

    gofer.run(main)


def test_fallback_socketpair(monkeypatch: pytest.MonkeyPatch) -> None:
    # The socketpair of platforms without one (TCP over loopback), as the
    # stdlib's (3.13): gofer sockets, and a foreign first connection refused.
    def main() -> None:
        a, b = gsocket._fallback_socketpair()
        with a, b:
            assert type(a) is gsocket.socket and a.family == socket.AF_INET
            a.sendall(b"hi")
            assert b.recv(2) == b"hi"
            # Neither end waited yet, so either may go to another thread (test_socket does).
            got: list[bytes] = []
            th = threading.Thread(target=lambda: got.append(b.recv(5)))
            th.start()
            gofer.sleep(0.01)
            a.sendall(b"later")
            th.join(30)
            assert got == [b"later"]
        for bad in ({"family": socket.AF_UNIX}, {"type": socket.SOCK_DGRAM}, {"proto": 1}):
            with pytest.raises(ValueError, match="Only"):
                gsocket._fallback_socketpair(**bad)

        intruder: list[Any] = []
        real = gsocket.socket.getsockname

        def connect_first(self: Any) -> Any:
            name = real(self)
            if not intruder:  # someone else connects to the listening port first
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(name[:2])
                except BlockingIOError:
                    pass
                intruder.append(s)
            return name

        monkeypatch.setattr(gsocket.socket, "getsockname", connect_first)
        # ConnectionError, or ENOTCONN where closing the listener reset ours first.
        with pytest.raises(OSError):
            gsocket._fallback_socketpair()
        intruder[0].close()

    gofer.run(main)
