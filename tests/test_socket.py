"""gofer.socket against the stdlib socket module: same operations, same outcomes.

Each scenario is written once against a module ``m`` (``socket`` or
``gofer.socket``) and records what every step returned or raised; the
stdlib's record (taken in plain blocking code) must equal gofer's (taken in
a coroutine). Scenarios only use operations that cannot block forever in a
single thread.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

import gofer
from gofer import socket as gsocket

Rec = Callable[..., Any]


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return ("ok", fn())
    except Exception as exc:
        return ("raise", type(exc).__name__, getattr(exc, "errno", None), str(exc))


def _record(scenario: Callable[[Any, Rec], None], m: Any) -> list[Any]:
    out: list[Any] = []

    def rec(fn: Callable[[], Any]) -> Any:
        o = _outcome(fn)
        out.append(o)
        return o[1] if o[0] == "ok" else None

    scenario(m, rec)
    return out


def parity(scenario: Callable[[Any, Rec], None]) -> list[Any]:
    expected = _record(scenario, socket)
    got = gofer.run(_record, scenario, gsocket)
    assert got == expected
    return got


# -- scenarios -----------------------------------------------------------------


def test_socketpair_send_recv() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        with a, b:
            rec(lambda: a.send(b"hello"))
            rec(lambda: b.recv(3))
            rec(lambda: b.recv(100))
            rec(lambda: a.sendall(b"x" * 50_000))
            buf = bytearray(60_000)
            got = 0
            while got < 50_000:
                got += b.recv_into(memoryview(buf)[got:])
            rec(lambda: bytes(buf[:got]) == b"x" * 50_000)
            rec(lambda: a.sendall(memoryview(b"abcdef")[2:]))
            rec(lambda: b.recv(10))
            rec(lambda: a.sendall("text"))  # TypeError, as in the stdlib
            rec(lambda: a.shutdown(socket.SHUT_WR))
            rec(lambda: b.recv(10))
            rec(lambda: b.recv(10))
            rec(lambda: b.send(b"back"))
            rec(lambda: a.recv(10))

    parity(sc)


def test_timeout_settings() -> None:
    def sc(m: Any, rec: Rec) -> None:
        s = m.socket()
        with s:
            for v in (None, 0, 0.0, 2, 1.5, True, -1, float("nan"), "x", 1j):
                rec(lambda v=v: s.settimeout(v))
                rec(lambda: (s.gettimeout(), s.getblocking(), s.timeout))
            for flag in (False, True, 0, 1):
                rec(lambda flag=flag: s.setblocking(flag))
                rec(lambda: (s.gettimeout(), s.getblocking(), s.timeout))

    parity(sc)


def test_recv_timeout_and_nonblocking() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        with a, b:
            b.settimeout(0.02)
            rec(lambda: b.recv(10))  # TimeoutError('timed out')
            rec(lambda: b.recv_into(bytearray(10)))
            b.setblocking(False)
            rec(lambda: b.recv(10))  # BlockingIOError
            rec(lambda: b.recvfrom(10))
            a.send(b"data")
            rec(lambda: b.recv(10))
            a.setblocking(False)
            sent = 0
            while True:
                try:
                    sent += a.send(b"y" * 65536)
                except BlockingIOError as exc:
                    rec(lambda exc=exc: (type(exc).__name__, exc.errno))
                    break
            rec(lambda: a.sendall(b"z" * 1000))  # still full: BlockingIOError

    parity(sc)


def test_nonblocking_accept_and_connect() -> None:
    def sc(m: Any, rec: Rec) -> None:
        ls = m.create_server(("127.0.0.1", 0))
        with ls:
            ls.setblocking(False)
            rec(lambda: ls.accept())  # BlockingIOError
            c = m.socket()
            with c:
                c.setblocking(False)
                err = c.connect_ex(ls.getsockname())
                rec(lambda: err in (0, errno.EINPROGRESS))
                ls.settimeout(5)
                conn, addr = ls.accept()
                with conn:
                    rec(lambda: (conn.gettimeout(), conn.getblocking()))
                    rec(lambda: conn.getpeername() == c.getsockname() == addr)
                    rec(lambda: (conn.family, conn.type, conn.proto))

    parity(sc)


def test_connect_refused() -> None:
    def sc(m: Any, rec: Rec) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        addr = probe.getsockname()
        probe.close()  # nothing listens there now
        s = m.socket()
        with s:
            rec(lambda: s.connect_ex(addr))
        s = m.socket()
        with s:
            rec(lambda: s.connect(addr))
        rec(lambda: m.create_connection(addr, timeout=2))

    parity(sc)


def test_closed_socket_used_again() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        b.close()
        a.close()
        rec(lambda: a.close())
        rec(lambda: a.fileno())
        rec(lambda: a.recv(1))
        rec(lambda: a.send(b"x"))
        rec(lambda: a.sendall(b"x"))
        rec(lambda: a.recv_into(bytearray(1)))
        rec(lambda: a.accept())
        rec(lambda: a.connect(("127.0.0.1", 1)))
        rec(lambda: a.settimeout(1))
        rec(lambda: repr(a).split(" fd=")[0].rsplit(".", 1)[1])

    parity(sc)


def test_udp_sendto_recvfrom() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a = m.socket(m.AF_INET, m.SOCK_DGRAM)
        b = m.socket(m.AF_INET, m.SOCK_DGRAM)
        with a, b:
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            for i in range(3):
                rec(lambda i=i: b.sendto(b"d%d" % i, a.getsockname()))
            for _ in range(3):  # three datagrams queued: each short read must not lose the rest
                data, addr = a.recvfrom(100)
                rec(lambda data=data, addr=addr: (data, addr == b.getsockname()))
            b.sendto(b"into", 0, a.getsockname())
            buf = bytearray(10)
            n, addr = a.recvfrom_into(buf)
            rec(lambda: (bytes(buf[:n]), addr == b.getsockname()))
            a.settimeout(0.02)
            rec(lambda: a.recvfrom(10))

    parity(sc)


def test_makefile_lines() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        with a, b:
            w = a.makefile("wb")
            r = b.makefile("rb")
            w.write(b"one\ntwo\n")
            w.flush()
            rec(lambda: r.readline())
            rec(lambda: r.readline())
            w.close()
            a.close()
            rec(lambda: r.read())
            r.close()
            t = b.makefile("r", encoding="utf-8")
            rec(lambda: t.read())
            t.close()

    parity(sc)


def test_detach_dup_fromfd() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        d = a.dup()
        rec(lambda: type(d).__name__)
        fd = a.detach()
        rec(lambda: a.fileno())
        a2 = m.socket(fileno=fd)
        f = m.fromfd(a2.fileno(), a2.family, a2.type)
        with a2, b, d, f:
            a2.sendall(b"1")
            d.sendall(b"2")
            f.sendall(b"3")
            got = b""
            while len(got) < 3:
                got += b.recv(10)
            rec(lambda: sorted(got))

    parity(sc)


def test_sendfile() -> None:
    def sc(m: Any, rec: Rec) -> None:
        with tempfile.TemporaryFile() as f:
            f.write(os.urandom(40_000))
            f.seek(0)
            data = f.read()
            a, b = m.socketpair()
            with a, b:
                f.seek(0)
                rec(lambda: a.sendfile(f, 100, 30_000))
                rec(lambda: f.tell())
                got = b""
                while len(got) < 30_000:
                    got += b.recv(65536)
                rec(lambda: got == data[100:30_100])
                rec(lambda: a.sendfile(io.BytesIO(b"not a real file")))  # falls back to send()
                rec(lambda: b.recv(100))

    parity(sc)


def test_connection_reset() -> None:
    def sc(m: Any, rec: Rec) -> None:
        ls = m.create_server(("127.0.0.1", 0))
        with ls:
            c = m.create_connection(ls.getsockname())
            conn, _ = ls.accept()
            with conn:
                c.setsockopt(m.SOL_SOCKET, m.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()  # RST instead of FIN
                rec(lambda: conn.recv(10))
                rec(lambda: conn.recv(10))

    parity(sc)


def test_send_and_receive_fds() -> None:
    def sc(m: Any, rec: Rec) -> None:
        a, b = m.socketpair()
        r, w = os.pipe()
        with a, b:
            rec(lambda: m.send_fds(a, [b"fd"], [w]))
            msg, fds, flags, _addr = m.recv_fds(b, 10, 1)
            rec(lambda: (msg, len(fds), flags))
            os.write(fds[0], b"!")
            rec(lambda: os.read(r, 1))
            for fd in (r, w, *fds):
                os.close(fd)

    parity(sc)


def test_getaddrinfo_and_names() -> None:
    def sc(m: Any, rec: Rec) -> None:
        rec(lambda: m.getaddrinfo("127.0.0.1", 80, type=m.SOCK_STREAM))
        rec(lambda: m.getaddrinfo("::1", "443", m.AF_INET6, m.SOCK_STREAM))
        rec(lambda: m.getaddrinfo(None, 0, m.AF_INET, m.SOCK_STREAM, 0, m.AI_PASSIVE))
        rec(lambda: m.getaddrinfo("localhost", 80, m.AF_INET, m.SOCK_STREAM))
        rec(lambda: m.getaddrinfo("127.0.0.1", "http", m.AF_INET, m.SOCK_STREAM))
        rec(lambda: m.getaddrinfo("no-such-host.invalid", 80, flags=m.AI_NUMERICHOST))
        rec(lambda: m.gethostbyname("127.0.0.1"))
        rec(lambda: m.gethostbyname("localhost"))
        rec(lambda: m.getnameinfo(("127.0.0.1", 80), m.NI_NUMERICHOST | m.NI_NUMERICSERV))

    parity(sc)


# -- module-level checks ---------------------------------------------------------------


def test_module_reexports_the_stdlib() -> None:
    missing = [n for n in socket.__all__ if not hasattr(gsocket, n)]
    assert missing == []
    assert gsocket.AF_INET is socket.AF_INET
    assert gsocket.timeout is socket.timeout
    assert gsocket.gaierror is socket.gaierror
    assert gsocket.inet_pton is socket.inet_pton
    assert gsocket.SocketType is gsocket.socket
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gsocket.nope  # noqa: B018


def test_gofer_socket_is_a_stdlib_socket() -> None:
    s = gsocket.socket()
    with s:
        assert isinstance(s, socket.socket)
        assert repr(s).startswith("<gofer.socket.socket fd=")
    a, b = gsocket.socketpair()
    with a, b:
        assert type(a) is gsocket.socket
        conn_cls = type(gsocket.fromfd(a.fileno(), a.family, a.type))
        assert conn_cls is gsocket.socket


def test_numeric_getaddrinfo_needs_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    from gofer import dns

    calls: list[Any] = []

    def spy(fn: Any, *args: Any, **kw: Any) -> Any:
        calls.append(args)
        return fn(*args, **kw)

    monkeypatch.setattr(dns, "to_thread", spy)

    def main() -> None:
        gsocket.getaddrinfo("10.1.2.3", 80)
        gsocket.getaddrinfo("::1", 80)
        gsocket.getaddrinfo(None, 80)
        assert calls == []
        gsocket.getaddrinfo("localhost", 80)
        assert len(calls) == 1

    gofer.run(main)


def test_name_lookup_does_not_block_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from gofer import dns

    release = threading.Event()
    real = dns._gai

    def slow_gai(*args: Any) -> Any:
        release.wait(5)
        return real(*args)

    monkeypatch.setattr(dns, "_gai", slow_gai)

    def main() -> None:
        ticks = []

        def ticker() -> None:
            for i in range(3):
                ticks.append(i)
                gofer.sleep(0.001)
            release.set()

        t = gofer.go(ticker)
        res = gsocket.getaddrinfo("localhost", 80, gsocket.AF_INET)
        t.join()
        assert ticks == [0, 1, 2]  # they ran while the lookup was pending
        assert res[0][4][0] == "127.0.0.1"

    gofer.run(main)


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_socket_moves_to_another_thread_between_waits(timeout: float | None) -> None:
    # socketserver's ThreadingMixIn accepts (and with TLS shakes hands, which
    # may wait) in one thread, then serves the socket in a new one: the fd's
    # registration must follow the thread that waits next.
    import threading

    a, b = gsocket.socketpair()
    a.settimeout(timeout)
    waited = threading.Event()
    release = threading.Event()

    def first_owner() -> None:
        a.settimeout(0.01)
        with pytest.raises(TimeoutError):
            a.recv(1)  # waits, so this thread's hub (which stays alive) holds the fd
        a.settimeout(timeout)
        waited.set()
        release.wait(10)

    th = threading.Thread(target=first_owner)
    th.start()
    try:
        assert waited.wait(10)

        def reader() -> bytes:
            gofer.go(lambda: (gofer.sleep(0.01), b.sendall(b"xyz")))
            buf = bytearray(3)
            n = a.recv_into(buf)  # waits here, on this thread's hub
            gofer.go(lambda: (gofer.sleep(0.01), b.sendall(b"more")))
            return bytes(buf[:n]) + a.recv(4)

        assert gofer.run(reader) == b"xyzmore"
    finally:
        release.set()
        th.join(10)
        a.close()
        b.close()


def test_two_threads_waiting_on_one_socket_still_an_error() -> None:
    import threading

    a, b = gsocket.socketpair()
    parked = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        gofer.go(lambda: (gofer.sleep(0.05), parked.set()))
        a.recv(1)  # parked here until b sends

    th = threading.Thread(target=first)
    th.start()
    try:
        assert parked.wait(10)

        def second() -> None:
            try:
                a.recv(1)
            except RuntimeError as exc:
                errors.append(exc)

        gofer.run(second)
        assert errors and "already waiting" in str(errors[0])
    finally:
        b.sendall(b"x")
        th.join(10)
        a.close()
        b.close()
