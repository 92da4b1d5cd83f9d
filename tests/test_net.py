"""gofer.net: addresses, listen/connect, listeners, datagrams (UDP and Unix)."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

import pytest

import gofer
from gofer import net


@pytest.mark.parametrize(
    ("addr", "family", "sockaddr"),
    [
        (("127.0.0.1", 80), socket.AF_INET, ("127.0.0.1", 80)),
        ("127.0.0.1:8000", socket.AF_INET, ("127.0.0.1", 8000)),
        (":9000", socket.AF_INET, ("", 9000)),
        ("[::1]:443", socket.AF_INET6, ("::1", 443)),
        (("::1", 443, 0, 0), socket.AF_INET6, ("::1", 443, 0, 0)),
        ("localhost:80", socket.AF_UNSPEC, ("localhost", 80)),
        ("unix:/tmp/x.sock", socket.AF_UNIX, "/tmp/x.sock"),
        ("unix:@abstract", socket.AF_UNIX, "\0abstract"),
    ],
)
def test_parse_address(addr: Any, family: int, sockaddr: Any) -> None:
    assert net.parse_address(addr) == (family, sockaddr)


@pytest.mark.parametrize(
    ("addr", "error", "message"),
    [
        ("127.0.0.1", ValueError, "expected 'host:port'"),
        ("host:http", ValueError, "expected 'host:port'"),
        ("::1:80", ValueError, "IPv6 addresses in brackets"),
        ("h:70000", ValueError, "out of range"),
        ("unix:", ValueError, "needs a path"),
        (("h",), ValueError, r"is \(host, port\)"),
        (("h", "80"), ValueError, r"is \(host, port\)"),
        (8080, TypeError, "not int"),
    ],
)
def test_bad_addresses_name_the_problem(addr: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        net.parse_address(addr)


def test_listen_connect_tcp_and_iterate() -> None:
    def main() -> None:
        with net.listen("127.0.0.1:0") as ln:
            host, port = ln.address

            def server() -> None:
                for conn in ln:
                    with conn:
                        conn.write_all(conn.readline().upper())

            t = gofer.go(server)
            for word in (b"a\n", b"bc\n"):
                with net.connect(f"{host}:{port}", timeout=5) as c:
                    assert c.peer == (host, port)
                    assert c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                    c.write_all(word)
                    assert c.read() == word.upper()
            t.cancel()

    gofer.run(main)


def test_connect_by_host_name() -> None:
    def main() -> None:
        with net.listen("127.0.0.1:0") as ln:
            port = ln.address[1]
            t = gofer.go(ln.accept)
            with net.connect(("localhost", port)) as c:
                conn, _ = t.join()
                conn.write_all(b"hi")
                assert c.read_exactly(2) == b"hi"
                conn.close()

    gofer.run(main)


def test_listener_close_wakes_accept() -> None:
    def main() -> None:
        ln = net.listen("127.0.0.1:0")
        t = gofer.go(ln.accept)
        gofer.sleep(0.01)
        ln.close()
        with pytest.raises(OSError) as ei:
            t.join()
        assert ei.value.errno == errno.EBADF

    gofer.run(main)


def test_connect_refused_and_timeout() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    free = probe.getsockname()
    probe.close()
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    filler = socket.create_connection(full.getsockname())

    def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            net.connect(free)
        with pytest.raises(TimeoutError):
            net.connect(full.getsockname(), timeout=0.1)

    try:
        gofer.run(main)
    finally:
        filler.close()
        full.close()


def test_unix_stream(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # a socket file left behind by an earlier run
    stale.close()

    def main() -> None:
        ln = net.listen(f"unix:{path}")

        def server() -> None:
            conn, _ = ln.accept()
            with conn:
                conn.write_all(conn.read_exactly(4)[::-1])

        t = gofer.go(server)
        with net.connect(f"unix:{path}") as c:
            c.write_all(b"abcd")
            assert c.read() == b"dcba"
        t.join()
        ln.close()
        assert not path.exists()  # the listener removes its socket file

    gofer.run(main)


def test_unix_listen_keeps_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("precious")

    def main() -> None:
        with pytest.raises(OSError) as ei:
            net.listen(f"unix:{path}")
        assert ei.value.errno == errno.EADDRINUSE

    gofer.run(main)
    assert path.read_text() == "precious"


@pytest.mark.skipif(not os.path.exists("/proc/net/unix"), reason="abstract Unix sockets are Linux-only")
def test_unix_abstract_namespace() -> None:
    name = f"unix:@gofer-test-{os.getpid()}"

    def main() -> None:
        with net.listen(name) as ln:
            t = gofer.go(ln.accept)
            with net.connect(name) as c:
                conn, _ = t.join()
                with conn:
                    c.write_all(b"x")
                    assert conn.read(1) == b"x"

    gofer.run(main)


def test_udp_datagrams() -> None:
    def main() -> None:
        srv = net.listen_datagram("127.0.0.1:0")
        cli = net.connect_datagram(srv.getsockname())
        with srv, cli:

            def echo() -> None:
                for _ in range(3):
                    data, addr = srv.recvfrom(100)
                    srv.sendto(data.upper(), addr)

            t = gofer.go(echo)
            for word in (b"one", b"two", b"three"):
                cli.send(word)
                assert cli.recv(100) == word.upper()
            t.join()

    gofer.run(main)


def test_unix_datagrams(tmp_path: Path) -> None:
    def main() -> None:
        srv = net.listen_datagram(f"unix:{tmp_path / 'srv'}")
        cli = net.connect_datagram(f"unix:{tmp_path / 'srv'}", local=f"unix:{tmp_path / 'cli'}")
        with srv, cli:
            cli.send(b"ping")
            data, addr = srv.recvfrom(100)
            assert (data, addr) == (b"ping", str(tmp_path / "cli"))
            srv.sendto(b"pong", addr)
            assert cli.recv(100) == b"pong"

    gofer.run(main)


def test_datagram_recv_timeout(vrun: Any) -> None:
    def main() -> None:
        with net.listen_datagram("127.0.0.1:0") as s:
            s.settimeout(30)
            t0 = gofer.get_hub().now()
            with pytest.raises(TimeoutError, match="timed out"):
                s.recvfrom(10)
            assert gofer.get_hub().now() - t0 == pytest.approx(30)

    vrun(main)
