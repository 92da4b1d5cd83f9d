"""gofer.net.Server: a coroutine per connection, isolation of failures, graceful stop."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import gofer
from gofer import net
from gofer import ssl as gssl

CERTS = Path(__file__).parent / "certs"


def _echo_lines(conn: net.Stream) -> None:
    for line in conn:
        conn.write_all(line)


def _serve_in_background(srv: net.Server, **kw: Any) -> gofer.Task[None]:
    return gofer.go(srv.serve_forever, **kw)


def test_stream_and_raw_handlers() -> None:
    def raw_handler(sock: Any) -> None:
        assert isinstance(sock, gofer.socket.socket)
        while data := sock.recv(100):
            sock.sendall(data[::-1])

    def main() -> None:
        for handler, raw, msg, want in ((_echo_lines, False, b"line\n", b"line\n"), (raw_handler, True, b"abc", b"cba")):
            srv = net.Server(("127.0.0.1", 0), handler, raw=raw)
            t = _serve_in_background(srv)
            with net.connect(srv.address) as c:
                c.write_all(msg)
                assert c.read_exactly(len(want)) == want
            srv.shutdown(5)
            t.join()
            assert not srv.serving

    gofer.run(main)


def test_handler_failure_closes_only_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    def handler(conn: net.Stream) -> None:
        for line in conn:
            if line == b"boom\n":
                raise ValueError("handler bug")
            conn.write_all(line)

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), handler)
        t = _serve_in_background(srv)
        good = net.connect(srv.address)
        bad = net.connect(srv.address)
        bad.write_all(b"boom\n")
        assert bad.read() == b""  # the server closed it
        good.write_all(b"still here\n")
        assert good.readline() == b"still here\n"
        for c in (good, bad):
            c.close()
        srv.shutdown(5)
        t.join()

    with caplog.at_level(logging.ERROR, logger="gofer.net"):
        gofer.run(main)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and "handler bug" in str(errors[0].exc_info[1])


def test_graceful_shutdown_lets_connections_finish() -> None:
    finished = []

    def handler(conn: net.Stream) -> None:
        conn.write_all(b"ready\n")
        line = conn.readline()
        conn.write_all(b"bye " + line)
        finished.append(line)

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), handler)
        t = _serve_in_background(srv)
        c = net.connect(srv.address)
        assert c.readline() == b"ready\n"
        stopper = gofer.go(srv.shutdown, 30)
        gofer.sleep(0.01)
        with pytest.raises(ConnectionRefusedError):
            net.connect(srv.address)  # no new connections
        assert not stopper.done()  # still waiting for ours
        c.write_all(b"done\n")
        assert c.readline() == b"bye done\n"
        stopper.join()
        t.join()
        c.close()

    gofer.run(main)
    assert finished == [b"done\n"]


def test_grace_expiry_cancels_connections(vrun: Any) -> None:
    seen = []

    def handler(conn: net.Stream) -> None:
        try:
            conn.read(10)  # the client never sends anything
        except gofer.Cancelled:
            seen.append(gofer.get_hub().now())
            raise

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), handler)
        t = _serve_in_background(srv)
        c = net.connect(srv.address)
        gofer.sleep(1)
        t0 = gofer.get_hub().now()
        srv.shutdown(grace=30)
        assert gofer.get_hub().now() - t0 == pytest.approx(30)
        assert seen == [pytest.approx(t0 + 30)]
        assert c.read() == b""
        c.close()
        t.join()

    vrun(main)


def test_close_cancels_at_once_and_serve_forever_returns() -> None:
    def handler(conn: net.Stream) -> None:
        conn.read(10)

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), handler)
        t = _serve_in_background(srv)
        conns = [net.connect(srv.address) for _ in range(5)]
        while srv.connections < 5:
            gofer.sleep(0.001)
        srv.close()
        t.join()
        assert srv.connections == 0
        for c in conns:
            assert c.read() == b""
            c.close()

    gofer.run(main)


def test_cancelling_serve_forever_stops_everything() -> None:
    cancelled = []

    def handler(conn: net.Stream) -> None:
        try:
            conn.read(10)
        except gofer.Cancelled:
            cancelled.append(1)
            raise

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), handler)
        t = _serve_in_background(srv)
        c = net.connect(srv.address)
        while srv.connections < 1:
            gofer.sleep(0.001)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert cancelled == [1]
        with pytest.raises(ConnectionRefusedError):
            net.connect(srv.address)
        c.close()

    gofer.run(main)


def test_stop_from_another_thread() -> None:
    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), _echo_lines)
        th = threading.Timer(0.05, srv.stop, args=(1.0,))
        th.start()
        srv.serve_forever()  # returns once the other thread stopped it
        th.join()

    gofer.run(main)


@pytest.mark.unpatched  # it checks the stdlib's own blocking behaviour
def test_prebound_socket_and_unix_address(tmp_path: Path) -> None:
    def main() -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        srv = net.Server(s, _echo_lines)  # takes the socket over
        assert s.fileno() == -1
        path = tmp_path / "srv.sock"
        usrv = net.Server(f"unix:{path}", _echo_lines)
        tasks = [_serve_in_background(srv), _serve_in_background(usrv)]
        for addr in (srv.address, f"unix:{path}"):
            with net.connect(addr) as c:
                c.write_all(b"x\n")
                assert c.readline() == b"x\n"
        for x in (srv, usrv):
            x.close()
        for t in tasks:
            t.join()
        assert not path.exists()

    gofer.run(main)


def test_context_manager_and_state_errors() -> None:
    def main() -> None:
        with net.Server(("127.0.0.1", 0), _echo_lines) as srv:
            t = _serve_in_background(srv)
            gofer.sleep(0)
        t.join()
        with pytest.raises(RuntimeError, match="fresh server"):
            srv.serve_forever()
        with pytest.raises(TypeError, match="must be callable"):
            net.Server(("127.0.0.1", 0), "not a function")  # type: ignore[arg-type]

    gofer.run(main)


def test_tls_server_and_a_plain_text_client(caplog: pytest.LogCaptureFixture) -> None:
    sctx = gssl.server_context(str(CERTS / "server.pem"), str(CERTS / "server.key"))
    cctx = gssl.client_context(str(CERTS / "ca.pem"))

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), _echo_lines, ssl=sctx)
        t = _serve_in_background(srv)
        plain = net.connect(srv.address)
        plain.write_all(b"GET / HTTP/1.0\r\n\r\n")
        try:
            assert plain.read() == b""
        except ConnectionResetError:
            pass  # the server closed with our bytes unread
        plain.close()
        raw = gofer.socket.create_connection(srv.address)
        tls = net.Stream(gssl.wrap_socket(raw, cctx, server_hostname="localhost"))
        tls.write_all(b"secure\n")
        assert tls.readline() == b"secure\n"
        tls.close()
        srv.shutdown(5)
        t.join()

    with caplog.at_level(logging.INFO, logger="gofer.net"):
        gofer.run(main)
    assert any("SSL" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


EMFILE_SERVER = textwrap.dedent(
    """
    import os, resource, sys
    import gofer
    from gofer import net

    def handler(conn):
        for line in conn:
            conn.write_all(line)

    def main():
        srv = net.Server(("127.0.0.1", 0), handler, backlog=100)
        used = len(os.listdir("/proc/self/fd"))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + 8, hard))
        print(srv.address[1], flush=True)
        srv.serve_forever()

    gofer.run(main)
    """
)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc to count fds")
def test_out_of_fds_on_accept_backs_off_and_recovers() -> None:
    proc = subprocess.Popen([sys.executable, "-c", EMFILE_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    clients: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for _ in range(30):  # far more than the server may open
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.3)
        cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(1.5)
        cpu = _cpu_seconds(proc.pid) - cpu0
        wall = time.monotonic() - t0
        assert proc.poll() is None  # still serving
        assert cpu < 0.5 * wall  # backing off, not spinning on accept
        for c in clients:
            c.close()
        clients.clear()
        deadline = time.monotonic() + 10
        while True:  # once fds are free again, new connections are served
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.settimeout(1)
                c.sendall(b"back\n")
                try:
                    if c.recv(10) == b"back\n":
                        break
                except (TimeoutError, ConnectionResetError):
                    pass
            assert time.monotonic() < deadline, "the server did not recover after running out of fds"
    finally:
        for c in clients:
            c.close()
        proc.kill()
        _, err = proc.communicate()
    assert b"Too many open files" in err


SIGTERM_SERVER = textwrap.dedent(
    """
    import gofer
    from gofer import net

    def handler(conn):
        conn.write_all(b"hello\\n")
        line = conn.readline()
        conn.write_all(b"got " + line)

    net.serve(("127.0.0.1", 0), handler, grace=20, ready=lambda a: print(a[1], flush=True))
    print("stopped", flush=True)
    """
)


def test_serve_sigterm_is_graceful() -> None:
    import signal

    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_SERVER], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = c.makefile("rwb")
        assert f.readline() == b"hello\n"
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert proc.poll() is None  # waiting for our connection
        f.write(b"last words\n")
        f.flush()
        assert f.readline() == b"got last words\n"
        f.close()
        c.close()
        assert proc.wait(10) == 0
        assert proc.stdout.read() == b"stopped\n"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_tls_handshake_timeout_frees_a_silent_connection(vrun: Any) -> None:
    sctx = gssl.server_context(str(CERTS / "server.pem"), str(CERTS / "server.key"))

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), _echo_lines, ssl=sctx, handshake_timeout=5)
        t = _serve_in_background(srv)
        silent = net.connect(srv.address)  # never sends a ClientHello
        while srv.connections < 1:
            gofer.sleep(0.001)
        t0 = gofer.get_hub().now()
        while srv.connections:
            gofer.sleep(0.5)
        assert gofer.get_hub().now() - t0 == pytest.approx(5, abs=1)
        assert silent.read() == b""
        silent.close()
        srv.shutdown(1)
        t.join()

    vrun(main)
